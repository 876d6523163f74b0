/** DHCP leases as the store holds them (durable before their ACK was sent). */
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import type { Database } from '../../store/schema.ts';

const Lease = Type.Object({
  ip: Type.String(),
  network: Type.String(),
  mac: Type.String(),
  hostname: Type.Union([Type.String(), Type.Null()]),
  state: Type.String(),
  expiresAt: Type.String({ format: 'date-time' }),
});

export function registerLeaseRoutes(app: FastifyInstance, db: Kysely<Database>): void {
  app.get(
    '/api/v1/leases',
    {
      config: { permission: 'read' },
      schema: {
        tags: ['dhcp'],
        summary: 'DHCP leases',
        querystring: Type.Object({
          network: Type.Optional(Type.String({ maxLength: 63 })),
          state: Type.Optional(
            Type.Union(['bound', 'released', 'declined', 'expired'].map((state) => Type.Literal(state))),
          ),
        }),
        response: { 200: Type.Array(Lease) },
      },
    },
    async (request) => {
      const query = request.query as { network?: string; state?: string };
      let q = db
        .selectFrom('leases')
        .innerJoin('networks', 'networks.id', 'leases.network_id')
        .select([
          'leases.ip',
          'networks.name as network',
          'leases.mac',
          'leases.hostname',
          'leases.state',
          'leases.expires_at',
        ])
        .orderBy('leases.ip');
      if (query.network) q = q.where('networks.name', '=', query.network);
      if (query.state) q = q.where('leases.state', '=', query.state as 'bound');
      return (await q.execute()).map((l) => ({
        ip: l.ip,
        network: l.network,
        mac: l.mac,
        hostname: l.hostname,
        state: l.state,
        expiresAt: new Date(l.expires_at).toISOString(),
      }));
    },
  );
}
