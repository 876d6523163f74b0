/**
 * BMCs on the API: a host's BMC settings and password (write-only: answers say `passwordSet`),
 * shared credentials sets, power (status: read; actions: write) and the next boot device. Every
 * power and boot call is audited with what was asked and what the BMC answered, never a password.
 */
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import { recordAudit } from '../../auth/audit.ts';
import { requestRebuild } from '../../fleet/builds.ts';
import {
  anySealed,
  BMC_TYPES,
  clearHostBmc,
  deleteCredentialSet,
  getHostBmc,
  listCredentialSets,
  putCredentialSet,
  resealAll,
  setHostBmc,
} from '../../bmc/credentials.ts';
import { BOOT_DEVICES, POWER_ACTIONS, PowerService, type BmcDeps } from '../../bmc/power.ts';
import { loadKeyring, type Keyring } from '../../bmc/secret-box.ts';
import type { Database } from '../../store/schema.ts';
import { errorReplies, NameParams } from '../schemas.ts';

const tags = ['hosts'];
const literals = <T extends string>(values: readonly T[], description?: string) =>
  Type.Union(
    values.map((v) => Type.Literal(v)),
    description ? { description } : {},
  );
/** Which protocol spoke: IPMI's cipher suite or Redfish's login, whichever the answer has. */
const spoke = (r: { cipherSuite?: number; auth?: string }) =>
  r.cipherSuite !== undefined ? { cipherSuite: r.cipherSuite } : { auth: r.auth };
const Password = Type.String({
  minLength: 1,
  maxLength: 128,
  writeOnly: true,
  description: 'stored encrypted; never answered',
});
const SetName = Type.String({ pattern: '^[a-z0-9][a-z0-9._-]{0,62}$' });

const BmcView = Type.Object({
  type: Type.String(),
  address: Type.String(),
  username: Type.Union([Type.String(), Type.Null()]),
  credentials: Type.Union([Type.String(), Type.Null()], { description: 'the shared credentials set in use, if any' }),
  passwordSet: Type.Boolean(),
  insecure: Type.Optional(Type.Literal(true, { description: "Redfish: the BMC's certificate is not checked" })),
  caFile: Type.Optional(Type.String({ description: "Redfish: the CA file that vouches for the BMC's certificate" })),
});
const BmcBody = Type.Object(
  {
    type: literals(BMC_TYPES),
    address: Type.String({
      minLength: 1,
      maxLength: 261,
      description: 'HOST, HOST:PORT or [IPv6]:PORT (default port: 623 for ipmi, 443 for redfish)',
    }),
    username: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    password: Type.Optional(Password),
    credentials: Type.Optional(
      Type.Union([SetName, Type.Null()], { description: 'use this shared credentials set (null: stop using one)' }),
    ),
    insecure: Type.Optional(
      Type.Boolean({ description: "Redfish: do not check the BMC's TLS certificate (false: check it again)" }),
    ),
    caFile: Type.Optional(
      Type.Union([Type.String({ minLength: 2, maxLength: 4096, pattern: '^/' }), Type.Null()], {
        description:
          "Redfish: absolute path (on the kvmfleet server) of the PEM CA file for this BMC's certificate; null: the default (KVMFLEET_BMC_CA_FILE, else the system's CA store)",
      }),
    ),
  },
  { additionalProperties: false },
);
const CredentialSet = Type.Object({
  name: Type.String(),
  username: Type.String(),
  passwordSet: Type.Literal(true),
  hosts: Type.Integer({ description: 'hosts using it' }),
});
const CredentialSetBody = Type.Object(
  { username: Type.String({ minLength: 1, maxLength: 64 }), password: Password },
  { additionalProperties: false },
);
const PowerBody = Type.Object({ action: literals(POWER_ACTIONS) }, { additionalProperties: false });
const PowerReply = Type.Object({
  hostname: Type.String(),
  action: literals(POWER_ACTIONS),
  powerState: literals(['on', 'off'] as const),
  sent: Type.Union([literals(POWER_ACTIONS.filter((a) => a !== 'status')), Type.Null()], {
    description: 'what was sent to the BMC (a cycle of a machine that is off is a power on)',
  }),
  cipherSuite: Type.Optional(Type.Integer({ description: 'IPMI: the RMCP+ cipher suite of the session (17 or 3)' })),
  auth: Type.Optional(literals(['session', 'basic'] as const, 'Redfish: how kvmfleet logged in')),
});
const BootdevBody = Type.Object(
  {
    device: literals(BOOT_DEVICES),
    persistent: Type.Optional(Type.Boolean({ default: false })),
    uefi: Type.Optional(Type.Boolean({ default: false })),
  },
  { additionalProperties: false },
);
const RebuildBody = Type.Object(
  {
    uefi: Type.Optional(Type.Boolean({ default: false, description: 'network boot in UEFI mode (else legacy BIOS)' })),
  },
  { additionalProperties: false },
);
const BootdevReply = Type.Object({
  hostname: Type.String(),
  device: literals(BOOT_DEVICES),
  persistent: Type.Boolean(),
  uefi: Type.Boolean(),
  cipherSuite: Type.Optional(Type.Integer()),
  auth: Type.Optional(literals(['session', 'basic'] as const)),
});

// 409 no BMC, 422 unsupported, 502 authentication refused or a bad answer, 503 no secret key, 504 unreachable.
const RebuildReply = () =>
  Type.Object({ hostname: Type.String(), buildState: Type.Literal('ready'), bootdev: BootdevReply, power: PowerReply });
const bmcErrors = errorReplies(400, 404, 409, 422, 502, 503, 504);
const settingsErrors = errorReplies(400, 404, 409, 422, 503);

/** The keyring, loaded at first use; a failure is not remembered (the operator may fix the key file). */
function lazyKeyring(load: () => Keyring): () => Keyring {
  let ring: Keyring | undefined;
  return () => (ring ??= load());
}

export function registerPowerRoutes(app: FastifyInstance, db: Kysely<Database>, deps?: BmcDeps): void {
  const keyring = deps?.keyring ?? lazyKeyring(() => loadKeyring('memory://'));
  const power = new PowerService(db, { ...deps, keyring });
  const hostname = (request: FastifyRequest) => (request.params as { name: string }).name;
  const audit = (request: FastifyRequest, action: string, result: string, detail: Record<string, unknown>) =>
    recordAudit(db, {
      actor: request.principal?.user ?? 'anonymous',
      action,
      target: hostname(request),
      result,
      detail,
    });

  // Key rotation: whatever is sealed under an older key is re-sealed under the first one at start.
  app.addHook('onReady', async () => {
    // Nothing sealed yet: do not create a key file this node would then be alone in holding.
    if (!(await anySealed(db))) return;
    let ring: Keyring;
    try {
      ring = keyring();
    } catch {
      return; // no key here: the first call that needs one says so
    }
    const { resealed, unopenable } = await resealAll(db, ring);
    if (resealed || unopenable)
      app.log.warn({ resealed, unopenable, keyId: ring.currentId }, 'BMC secrets re-sealed under the current key');
  });

  app.get(
    '/api/v1/hosts/:name/bmc',
    {
      config: { permission: 'read' },
      schema: {
        tags,
        summary: "The host's BMC: type, address, user, credentials set, whether a password is set",
        params: NameParams,
        response: { 200: Type.Union([BmcView, Type.Null()]), ...settingsErrors },
      },
    },
    (request) => getHostBmc(db, hostname(request)),
  );
  app.put(
    '/api/v1/hosts/:name/bmc',
    {
      config: { permission: 'write' },
      schema: {
        tags,
        summary: "Set the host's BMC; a password is stored encrypted and never answered",
        params: NameParams,
        body: BmcBody,
        response: { 200: BmcView, ...settingsErrors },
      },
    },
    (request) => setHostBmc(db, keyring, hostname(request), request.body as Static<typeof BmcBody>),
  );
  app.delete(
    '/api/v1/hosts/:name/bmc',
    {
      config: { permission: 'write' },
      schema: {
        tags,
        summary: "Forget the host's BMC and its password",
        params: NameParams,
        response: { 204: Type.Null(), ...settingsErrors },
      },
    },
    async (request, reply) => {
      await clearHostBmc(db, hostname(request));
      return reply.code(204).send();
    },
  );

  app.get(
    '/api/v1/bmc-credentials',
    {
      config: { permission: 'read' },
      schema: {
        tags,
        summary: 'Shared BMC credentials sets (names and users; passwords are never answered)',
        response: { 200: Type.Array(CredentialSet) },
      },
    },
    () => listCredentialSets(db),
  );
  app.put(
    '/api/v1/bmc-credentials/:name',
    {
      config: { permission: 'write' },
      schema: {
        tags,
        summary: 'Create or replace a shared BMC credentials set',
        params: NameParams,
        body: CredentialSetBody,
        response: { 200: CredentialSet, ...settingsErrors },
      },
    },
    (request) => putCredentialSet(db, keyring, hostname(request), request.body as Static<typeof CredentialSetBody>),
  );
  app.delete(
    '/api/v1/bmc-credentials/:name',
    {
      config: { permission: 'write' },
      schema: {
        tags,
        summary: 'Remove a shared BMC credentials set no host uses',
        params: NameParams,
        response: { 204: Type.Null(), ...settingsErrors },
      },
    },
    async (request, reply) => {
      await deleteCredentialSet(db, hostname(request));
      return reply.code(204).send();
    },
  );

  app.get(
    '/api/v1/hosts/:name/power',
    {
      config: { permission: 'read' },
      schema: {
        tags,
        summary: "The host's power state, asked of its BMC",
        params: NameParams,
        response: { 200: PowerReply, ...bmcErrors },
      },
    },
    (request) => power.power(hostname(request), 'status'),
  );
  app.post(
    '/api/v1/hosts/:name/power',
    {
      config: { permission: 'write' },
      schema: {
        tags,
        summary: 'Power the host on, off (hard), soft (ACPI shutdown), cycle or reset through its BMC',
        params: NameParams,
        body: PowerBody,
        response: { 200: PowerReply, ...bmcErrors },
      },
    },
    async (request) => {
      const { action } = request.body as Static<typeof PowerBody>;
      try {
        const result = await power.power(hostname(request), action);
        await audit(request, `bmc power ${action}`, result.powerState, { sent: result.sent, ...spoke(result) });
        return result;
      } catch (error) {
        await audit(request, `bmc power ${action}`, 'failed', {
          code: (error as { code?: string }).code ?? 'internal',
        });
        throw error;
      }
    },
  );
  // The existing rebuild (fleet/builds.ts) plus the BMC: the next boot is PXE (once), then a power
  // cycle (a machine that is off is powered on). The BMC is tried first, so an unreachable BMC or a
  // wrong password leaves the host as it was.
  app.post(
    '/api/v1/hosts/:name/rebuild/power-cycle',
    {
      config: { permission: 'write' },
      schema: {
        tags,
        summary: 'Rebuild without a human: next boot PXE once, mark for rebuild, power cycle (or on) through the BMC',
        params: NameParams,
        body: RebuildBody,
        response: { 202: RebuildReply(), ...bmcErrors },
      },
    },
    async (request, reply) => {
      const name = hostname(request);
      const { uefi } = (request.body ?? {}) as Static<typeof RebuildBody>;
      try {
        const bootdev = await power.bootdev(name, { device: 'pxe', persistent: false, uefi: uefi ?? false });
        await requestRebuild(db, name, request.principal?.user ?? 'api');
        const result = await power.power(name, 'cycle');
        await audit(request, 'bmc rebuild power-cycle', result.powerState, { sent: result.sent, ...spoke(result) });
        reply.code(202);
        return { hostname: name, buildState: 'ready' as const, bootdev, power: result };
      } catch (error) {
        await audit(request, 'bmc rebuild power-cycle', 'failed', {
          code: (error as { code?: string }).code ?? 'internal',
        });
        throw error;
      }
    },
  );
  app.post(
    '/api/v1/hosts/:name/bootdev',
    {
      config: { permission: 'write' },
      schema: {
        tags,
        summary: 'Set the next boot device (pxe or disk; once unless persistent; UEFI or legacy) through the BMC',
        params: NameParams,
        body: BootdevBody,
        response: { 200: BootdevReply, ...bmcErrors },
      },
    },
    async (request) => {
      const body = request.body as Static<typeof BootdevBody>;
      const action = `bmc bootdev ${body.device}${body.persistent ? ' persistent' : ''}${body.uefi ? ' uefi' : ''}`;
      try {
        const result = await power.bootdev(hostname(request), body);
        await audit(request, action, 'set', spoke(result));
        return result;
      } catch (error) {
        await audit(request, action, 'failed', { code: (error as { code?: string }).code ?? 'internal' });
        throw error;
      }
    },
  );
}
