/** Hypervisors, VMs, templates and jobs on the API. Long work (bulk deploy) answers 202 with a job to follow. */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import type { LibvirtPool } from '../../protocols/libvirt/pool.ts';
import type { Database } from '../../store/schema.ts';
import {
  getHypervisor,
  listHypervisors,
  refreshHypervisor,
  registerHypervisor,
  removeHypervisor,
  reprobeHypervisor,
} from '../../vms/hypervisors.ts';
import type { JobRunner } from '../../vms/jobs.ts';
import { listNodes } from '../../cluster/nodes.ts';
import type { VmService } from '../../vms/vm-service.ts';
import { eventStreamHeaders } from '../resource.ts';
import { errorReplies, eventStreamReply, IdParams, idOf, Ipv4, Name, NameParams } from '../schemas.ts';
import { PATTERN } from '../../fleet/validate-names.ts';

// Beyond the errors every route has (api/responses.ts): a hypervisor, template or VM the body names
// does not exist (404), conflicts, rules, libvirt's refusal (502), a hypervisor out of reach (503).
const errors = errorReplies(404, 409, 422, 502, 503);
// Query strings and path parameters arrive as text (the API does not coerce types): say so in the schema.
const Flag = Type.Union([Type.Literal('true'), Type.Literal('false')]);
const JobParams = IdParams;
const jobId = (request: { params: unknown }) => idOf((request.params as { id: string }).id, 'job');
const tags = ['vms'];

const HypervisorInput = Type.Object(
  {
    name: Name.hypervisor,
    uri: Type.String({
      minLength: 1,
      maxLength: 1024,
      description: 'libvirt URI: qemu:///system, qemu+ssh://root@hv1/system, qemu+tcp://hv1/system',
    }),
    site: Name.site,
    storagePool: Type.Optional(Type.String({ maxLength: 128 })),
    bridge: Type.Optional(Type.String({ maxLength: 15 })),
    maxParallel: Type.Optional(Type.Integer({ minimum: 1, maximum: 64 })),
    domainType: Type.Optional(Type.Union([Type.Literal('auto'), Type.Literal('kvm'), Type.Literal('qemu')])),
  },
  { additionalProperties: false },
);

const Source = Type.Union([
  Type.Object({ kind: Type.Literal('pxe') }, { additionalProperties: false }),
  Type.Object({ kind: Type.Literal('cdrom'), iso: Type.String({ maxLength: 4096 }) }, { additionalProperties: false }),
  Type.Object(
    { kind: Type.Literal('import'), disk: Type.String({ maxLength: 4096 }) },
    { additionalProperties: false },
  ),
  Type.Object({ kind: Type.Literal('none') }, { additionalProperties: false }),
]);

const CreateVm = Type.Object(
  {
    name: Name.vm,
    hypervisor: Type.Optional(Name.hypervisor),
    site: Type.Optional(Name.site),
    memoryMiB: Type.Integer({ minimum: 16 }),
    vcpus: Type.Integer({ minimum: 1, maximum: 4096 }),
    diskGiB: Type.Optional(Type.Number({ minimum: 0.001 })), // > 0 (OpenAPI 3.0 has no numeric exclusiveMinimum)
    source: Source,
    osVariant: Type.Optional(Type.String({ maxLength: 64 })),
    bridge: Type.Optional(Type.String({ maxLength: 15 })),
    mac: Type.Optional(Type.String({ pattern: PATTERN.vmMac })),
    graphics: Type.Optional(
      Type.Object(
        {
          type: Type.Union([Type.Literal('vnc'), Type.Literal('spice')]),
          password: Type.Optional(Type.String({ maxLength: 64 })),
          listen: Type.Optional(Type.String()),
        },
        { additionalProperties: false },
      ),
    ),
    autostart: Type.Optional(Type.Boolean()),
    start: Type.Optional(Type.Boolean()),
    antiAffinity: Type.Optional(Type.String({ maxLength: 64 })),
  },
  { additionalProperties: false },
);

const Identity = Type.Object(
  {
    hostname: Type.Optional(Type.String({ maxLength: 63 })),
    domain: Type.Optional(Type.String({ maxLength: 190 })),
    sshKeys: Type.Optional(Type.Array(Type.String({ maxLength: 16384 }), { maxItems: 64 })),
    ip: Type.Optional(Ipv4),
    prefix: Type.Optional(Type.Integer({ minimum: 1, maximum: 32 })),
    gateway: Type.Optional(Ipv4),
    dns: Type.Optional(Type.Array(Ipv4, { maxItems: 8 })),
    network: Type.Optional(
      Type.String({
        maxLength: 63,
        pattern: PATTERN.networkName,
        description: 'take a free static address from this kvmfleet network',
      }),
    ),
  },
  { additionalProperties: false },
);

const CloneBody = Type.Object(
  {
    name: Name.vm,
    kind: Type.Union([Type.Literal('linked'), Type.Literal('full')]),
    hypervisor: Type.Optional(Name.hypervisor),
    identity: Type.Optional(Identity),
    antiAffinity: Type.Optional(Type.String({ maxLength: 64 })),
    start: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

const BulkClone = Type.Object(
  {
    template: Name.vm,
    count: Type.Integer({ minimum: 1, maximum: 10000 }),
    namePrefix: Type.String({ maxLength: 56, pattern: PATTERN.namePrefix }),
    kind: Type.Union([Type.Literal('linked'), Type.Literal('full')]),
    site: Name.site,
    hypervisors: Type.Optional(Type.Array(Name.hypervisor, { maxItems: 1000 })),
    antiAffinity: Type.Optional(Type.String({ maxLength: 64 })),
    start: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

const Instant = Type.String({ format: 'date-time' });
const OrNull = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);
const Hypervisor = Type.Object({
  name: Type.String(),
  uri: Type.String(),
  site: Type.String(),
  storagePool: Type.String(),
  bridge: Type.String(),
  maxParallel: Type.Integer(),
  cpus: OrNull(Type.Integer()),
  memoryMiB: OrNull(Type.Integer()),
  poolCapacityBytes: OrNull(Type.Integer()),
  poolAvailableBytes: OrNull(Type.Integer()),
  domainType: OrNull(Type.Union([Type.Literal('kvm'), Type.Literal('qemu')])),
  domainTypeReason: OrNull(Type.String()),
  probedAt: OrNull(Type.String()),
  health: Type.Union([Type.Literal('up'), Type.Literal('down'), Type.Literal('unknown')]),
  lastError: OrNull(Type.String()),
  checkedAt: OrNull(Type.String()),
});
const vmFields = {
  name: Type.String(),
  hypervisor: Type.String(),
  uuid: Type.String(),
  state: Type.String(),
  memoryMiB: Type.Integer(),
  vcpus: Type.Integer(),
  template: OrNull(Type.String()),
  cloneKind: OrNull(Type.Union([Type.Literal('linked'), Type.Literal('full')])),
  disk: OrNull(Type.String()),
  macs: Type.Array(Type.String()),
  antiAffinity: OrNull(Type.String()),
  ip: OrNull(Type.String()),
};
const Vm = Type.Object(vmFields);
const VmList = Type.Object({
  vms: Type.Array(
    Type.Object({
      ...vmFields,
      live: Type.Boolean({ description: 'the state was read from libvirt now (else: the last known)' }),
    }),
  ),
  unmanaged: Type.Array(Type.Object({ hypervisor: Type.String(), name: Type.String(), state: Type.String() }), {
    description: 'domains kvmfleet does not manage',
  }),
});
const Template = Type.Object({
  name: Type.String(),
  hypervisor: Type.String(),
  disk: Type.String(),
  memoryMiB: Type.Integer(),
  vcpus: Type.Integer(),
  operations: Type.Array(Type.String()),
  sealedAt: Type.String(),
  linkedClones: Type.Integer(),
});
const JobItem = Type.Object({
  name: Type.String(),
  hypervisor: Type.String(),
  ok: Type.Boolean(),
  error: Type.Optional(Type.String()),
  code: Type.Optional(Type.String({ description: "the error's stable code, when it has one" })),
  detail: Type.Optional(
    Type.String({ description: 'what happened (a site power-off: soft, hard after N s, was off)' }),
  ),
  ms: Type.Number(),
});
const jobFields = {
  id: Type.Integer(),
  kind: Type.String(),
  state: Type.Union(
    ['queued', 'running', 'succeeded', 'failed', 'partial', 'cancelled'].map((state) => Type.Literal(state)),
  ),
  total: Type.Integer(),
  done: Type.Integer(),
  failed: Type.Integer(),
  results: Type.Array(JobItem),
  createdAt: Type.String(),
  finishedAt: OrNull(Type.String()),
};
const Job = Type.Object(jobFields);
export const QueuedJob = Type.Object({
  ...jobFields,
  warning: Type.Optional(Type.String({ description: 'no worker node is alive' })),
});
const Deleted = { type: 'null', description: 'done' } as const;

export interface VmRouteDeps {
  readonly db: Kysely<Database>;
  readonly pool: LibvirtPool;
  readonly vms: VmService;
  readonly jobs: JobRunner;
}

export function registerVmRoutes(app: FastifyInstance, deps: VmRouteDeps): void {
  const { db, pool, vms, jobs } = deps;
  const name = (request: { params: unknown }) => (request.params as { name: string }).name;

  app.get(
    '/api/v1/hypervisors',
    {
      config: { permission: 'read' },
      schema: {
        tags,
        summary: 'Hypervisors, with capacity and health',
        querystring: Type.Object({ site: Type.Optional(Type.String({ maxLength: 63 })) }),
        response: { 200: Type.Array(Hypervisor) },
      },
    },
    (request) => listHypervisors(db, (request.query as { site?: string }).site),
  );
  app.get(
    '/api/v1/hypervisors/:name',
    {
      config: { permission: 'read' },
      schema: { tags, summary: 'One hypervisor', params: NameParams, response: { 200: Hypervisor } },
    },
    (request) => getHypervisor(db, name(request)),
  );
  app.post(
    '/api/v1/hypervisors',
    {
      config: { permission: 'write' },
      schema: {
        tags,
        summary: 'Register a hypervisor by libvirt URI (capacity is read from it)',
        body: HypervisorInput,
        response: { 201: Hypervisor, ...errors },
      },
    },
    async (request, reply) => {
      const hv = await registerHypervisor(db, pool, request.body as Static<typeof HypervisorInput>);
      reply.code(201);
      return hv;
    },
  );
  app.post(
    '/api/v1/hypervisors/:name/refresh',
    {
      config: { permission: 'write' },
      schema: {
        tags,
        summary: 'Read capacity and health again',
        params: NameParams,
        response: { 200: Hypervisor, ...errors },
      },
    },
    (request) => refreshHypervisor(db, pool, name(request)),
  );
  app.post(
    '/api/v1/hypervisors/:name/probe',
    {
      config: { permission: 'write' },
      schema: {
        tags,
        summary: 'Probe KVM again (kvm only if a KVM guest is seen to run); the verdict and its reason are stored',
        params: NameParams,
        response: { 200: Hypervisor, ...errors },
      },
    },
    (request) => reprobeHypervisor(db, pool, name(request)),
  );
  app.delete(
    '/api/v1/hypervisors/:name',
    {
      config: { permission: 'write' },
      schema: {
        tags,
        summary: 'Forget a hypervisor (refused while it holds VMs: 409)',
        params: NameParams,
        response: { 204: Deleted, ...errorReplies(409) },
      },
    },
    async (request, reply) => {
      await removeHypervisor(db, name(request));
      return reply.code(204).send();
    },
  );

  app.get(
    '/api/v1/vms',
    {
      config: { permission: 'read' },
      schema: {
        tags,
        summary: 'VMs on every hypervisor, with live state; domains kvmfleet does not manage are listed apart',
        response: { 200: VmList },
      },
    },
    () => vms.list(),
  );
  app.get(
    '/api/v1/vms/:name',
    { config: { permission: 'read' }, schema: { tags, summary: 'One VM', params: NameParams, response: { 200: Vm } } },
    async (request) => {
      const { id: _id, hypervisorId: _h, seedPath: _s, ...vm } = await vms.getVm(name(request));
      return vm;
    },
  );
  app.post(
    '/api/v1/vms',
    {
      config: { permission: 'write' },
      schema: { tags, summary: 'Create a VM (the virt-install job)', body: CreateVm, response: { 201: Vm, ...errors } },
    },
    async (request, reply) => {
      const vm = await vms.create(request.body as Static<typeof CreateVm>);
      reply.code(201);
      return vm;
    },
  );
  app.post(
    '/api/v1/vms/:name/start',
    {
      config: { permission: 'write' },
      schema: { tags, summary: 'Start a VM', params: NameParams, response: { 200: Vm, ...errors } },
    },
    (request) => vms.start(name(request)),
  );
  app.post(
    '/api/v1/vms/:name/shutdown',
    {
      config: { permission: 'write' },
      schema: {
        tags,
        summary: 'ACPI shutdown; after timeoutS, destroy if force',
        params: NameParams,
        querystring: Type.Object({
          timeoutS: Type.Optional(Type.String({ pattern: '^[1-9][0-9]{0,3}$' })),
          force: Type.Optional(Flag),
        }),
        response: { 200: Type.Object({ ...vmFields, forced: Type.Boolean() }), ...errors },
      },
    },
    (request) => {
      const q = request.query as { timeoutS?: string; force?: string };
      return vms.shutdown(name(request), {
        ...(q.timeoutS ? { timeoutS: Number(q.timeoutS) } : {}),
        force: q.force === 'true',
      });
    },
  );
  app.post(
    '/api/v1/vms/:name/destroy',
    {
      config: { permission: 'write' },
      schema: { tags, summary: 'Power off at once', params: NameParams, response: { 200: Vm, ...errors } },
    },
    (request) => vms.destroy(name(request)),
  );
  app.post(
    '/api/v1/vms/:name/autostart',
    {
      config: { permission: 'write' },
      schema: {
        tags,
        summary: 'Start the VM with its hypervisor, or not',
        params: NameParams,
        body: Type.Object({ enabled: Type.Boolean() }, { additionalProperties: false }),
        response: { 200: Type.Object({ name: Type.String(), autostart: Type.Boolean() }), ...errors },
      },
    },
    async (request) => {
      await vms.setAutostart(name(request), (request.body as { enabled: boolean }).enabled);
      return { name: name(request), autostart: (request.body as { enabled: boolean }).enabled };
    },
  );
  app.delete(
    '/api/v1/vms/:name',
    {
      config: { permission: 'write' },
      schema: {
        tags,
        summary: 'Undefine (refused while running); storage=true removes its volumes',
        params: NameParams,
        querystring: Type.Object({ storage: Type.Optional(Flag) }),
        response: { 204: Deleted, ...errors },
      },
    },
    async (request, reply) => {
      await vms.undefine(name(request), { removeStorage: (request.query as { storage?: string }).storage === 'true' });
      return reply.code(204).send();
    },
  );

  app.get(
    '/api/v1/templates',
    {
      config: { permission: 'read' },
      schema: {
        tags,
        summary: 'Templates (sealed VM disks) and their linked clones',
        response: { 200: Type.Array(Template) },
      },
    },
    () => vms.listTemplates(),
  );
  app.post(
    '/api/v1/templates',
    {
      config: { permission: 'write' },
      schema: {
        tags,
        summary: 'Seal a shut-off VM as a template (virt-sysprep)',
        body: Type.Object({ vm: Name.vm, name: Type.Optional(Name.vm) }, { additionalProperties: false }),
        response: { 201: Template, ...errors },
      },
    },
    async (request, reply) => {
      const body = request.body as { vm: string; name?: string };
      const template = await vms.sealTemplate(body.vm, body.name ?? body.vm);
      reply.code(201);
      return template;
    },
  );
  app.delete(
    '/api/v1/templates/:name',
    {
      config: { permission: 'write' },
      schema: {
        tags,
        summary: 'Refused while linked clones exist',
        params: NameParams,
        querystring: Type.Object({ storage: Type.Optional(Flag) }),
        response: { 204: Deleted, ...errors },
      },
    },
    async (request, reply) => {
      await vms.deleteTemplate(name(request), {
        removeStorage: (request.query as { storage?: string }).storage === 'true',
      });
      return reply.code(204).send();
    },
  );
  app.post(
    '/api/v1/templates/:name/clones',
    {
      config: { permission: 'write' },
      schema: {
        tags,
        summary: 'One linked or full clone with its own cloud-init identity',
        params: NameParams,
        body: CloneBody,
        response: { 201: Vm, ...errors },
      },
    },
    async (request, reply) => {
      const vm = await vms.clone({ ...(request.body as Static<typeof CloneBody>), template: name(request) });
      reply.code(201);
      return vm;
    },
  );

  app.post(
    '/api/v1/jobs/bulk-clone',
    {
      config: { permission: 'write' },
      schema: {
        tags: ['jobs'],
        summary: 'Deploy N clones across a site: 202 and a job to follow',
        body: BulkClone,
        response: { 202: QueuedJob, ...errors },
      },
    },
    async (request, reply) => {
      const job = await jobs.bulkClone(request.body as Static<typeof BulkClone>);
      reply.code(202);
      // Jobs run on worker nodes: say so when none is alive, rather than leave the job waiting silently.
      const workers = await listNodes(db, { role: 'worker', aliveOnly: true });
      return workers.length
        ? job
        : {
            ...job,
            warning: 'no worker node is alive: the job waits queued until one starts (kvmfleet serve --roles worker)',
          };
    },
  );
  app.get(
    '/api/v1/jobs',
    {
      config: { permission: 'read' },
      schema: { tags: ['jobs'], summary: 'The latest jobs', response: { 200: Type.Array(Job) } },
    },
    () => jobs.list(),
  );
  app.get(
    '/api/v1/jobs/:id',
    {
      config: { permission: 'read' },
      schema: {
        tags: ['jobs'],
        summary: 'One job with its per-item results',
        params: JobParams,
        response: { 200: Job },
      },
    },
    (request) => jobs.get(jobId(request)),
  );
  app.post(
    '/api/v1/jobs/:id/cancel',
    {
      config: { permission: 'write' },
      schema: {
        tags: ['jobs'],
        summary: 'Cancel a job: a queued one at once; a running one starts no more items and ends as cancelled',
        params: JobParams,
        response: { 200: Job, ...errorReplies(409) },
      },
    },
    (request) => jobs.cancel(jobId(request)),
  );
  // Server-sent events: "progress" with each finished item, then "end" with the job. Read from the
  // store, so a job run by a worker on another node is followed the same way.
  app.get(
    '/api/v1/jobs/:id/events',
    {
      config: { permission: 'read' },
      schema: {
        tags: ['jobs'],
        summary: 'Server-sent events: progress per item, then end',
        params: JobParams,
        response: { 200: eventStreamReply('"progress" with each finished item, then "end" with the job') },
      },
    },
    async (request, reply) => {
      const id = jobId(request);
      let job = await jobs.get(id);
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, eventStreamHeaders(request.raw.httpVersionMajor));
      const send = (event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      let closed = false;
      request.raw.on('close', () => (closed = true));
      let sent = 0;
      send('progress', { job: id, state: job.state, done: job.done, failed: job.failed, total: job.total });
      for (;;) {
        for (; sent < job.results.length; sent++)
          send('progress', {
            job: id,
            state: job.state,
            done: sent + 1,
            failed: job.results.slice(0, sent + 1).filter((r) => !r.ok).length,
            total: job.total,
            item: job.results[sent],
          });
        if (job.state !== 'queued' && job.state !== 'running') {
          send('end', job);
          return res.end();
        }
        await new Promise((r) => setTimeout(r, 500));
        if (closed) return;
        job = await jobs.get(id);
      }
    },
  );
}
