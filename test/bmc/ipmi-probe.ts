/**
 * Runs kvmfleet's IPMI client inside a test namespace (the test process cannot enter one):
 *   node --import tsx ipmi-probe.ts '{"host":…,"port":…,"username":…,"ops":[…],"options":{…}}'
 * with the password in KVMT_IPMI_PASSWORD (never on a command line). Prints one JSON line.
 */
import { IpmiError, withIpmiSession } from '../../src/protocols/ipmi/client.ts';
import * as commands from '../../src/protocols/ipmi/commands.ts';

type Op = { status: true } | { control: commands.ChassisAction } | { boot: commands.BootFlags } | { getBoot: true };
const args = JSON.parse(process.argv[2]!) as {
  host: string;
  port: number;
  username: string;
  ops: Op[];
  options?: Record<string, unknown>;
};
const started = Date.now();
try {
  const out = await withIpmiSession(
    { host: args.host, port: args.port, username: args.username, password: process.env.KVMT_IPMI_PASSWORD ?? '' },
    args.options ?? {},
    async (session) => {
      const results: unknown[] = [];
      for (const op of args.ops) {
        if ('status' in op)
          results.push(commands.parseChassisStatus((await session.request(commands.getChassisStatus())).data).power);
        else if ('control' in op)
          results.push((await session.request(commands.chassisControl(op.control))).completionCode);
        else if ('boot' in op) results.push((await session.request(commands.setBootFlags(op.boot))).completionCode);
        else results.push(commands.parseBootOptions((await session.request(commands.getBootFlags())).data));
      }
      return { results, info: session.info };
    },
  );
  console.log(JSON.stringify({ ok: true, ...out, elapsedMs: Date.now() - started }));
} catch (error) {
  const e = error as IpmiError;
  console.log(
    JSON.stringify({
      ok: false,
      error: { kind: e instanceof IpmiError ? e.kind : 'internal', message: e.message, status: e.status },
      elapsedMs: Date.now() - started,
    }),
  );
}
