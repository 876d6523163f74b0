/** The `kvmfleet` command. `serve` runs the server; every other verb talks to it over the REST API. */
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { VERSION } from '../version.ts';
import { ApiClient, ApiError } from './client.ts';
import { formatTable } from './table.ts';
import { registerServeCommand } from './serve-command.ts';
import { registerInventoryCommands, registerNodeCommands } from './inventory-commands.ts';
import { registerVmCommands } from './vm-commands.ts';
import { registerPlanCommand } from './plan-command.ts';
import { registerAuthCommands } from './auth-commands.ts';
import { registerPowerCommands } from './power-commands.ts';
import { registerSitePowerCommands } from './site-power-commands.ts';
import { registerNginxCommand } from './nginx-command.ts';

interface GlobalOptions {
  url: string;
  token?: string;
  cacert?: string;
  json?: boolean;
}

const program = new Command('kvmfleet')
  .description('Provision KVM fleets: network-boot hypervisors with Kickstart, then VMs from templates.')
  .version(VERSION)
  .addOption(new Option('--url <url>', 'kvmfleet API to talk to').env('KVMFLEET_URL').default('http://127.0.0.1:8080'))
  .addOption(new Option('--token <token>', 'API token').env('KVMFLEET_TOKEN'))
  .addOption(
    new Option(
      '--cacert <file>',
      'CA certificate (PEM) to verify an https:// API with, e.g. its self-signed certificate',
    ).env('KVMFLEET_CACERT'),
  )
  .option('--json', 'print JSON instead of tables');

const globals = () => program.opts<GlobalOptions>();
const client = () =>
  new ApiClient({
    baseUrl: globals().url,
    token: globals().token,
    ca: globals().cacert ? readFileSync(globals().cacert!) : undefined,
  });
const print = (data: unknown, human: () => string) =>
  console.log(globals().json ? JSON.stringify(data, null, 2) : human());
const context = { client, print, json: () => !!globals().json };

registerServeCommand(program, context);
registerInventoryCommands(program, context);
registerVmCommands(program, context);
registerPlanCommand(program, context.json);
registerAuthCommands(program, context);
registerPowerCommands(program, context); // after the inventory verbs: it adds to `host`
registerSitePowerCommands(program, context); // adds to `site`
registerNodeCommands(program, context);
registerNginxCommand(program, context);

/** Problems of an import, one line each, so an operator can fix the file. */
function describeDetails(details: unknown): string {
  const d = details as
    | {
        rows?: { line: number; hostname: string; problems: { code: string; message: string }[] }[];
        items?: { item: string; name: string; problems: { code: string; message: string }[] }[];
        problems?: { code: string; message: string }[];
      }
    | undefined;
  if (d?.rows)
    return formatTable(
      ['line', 'hostname', 'code', 'problem'],
      d.rows.flatMap((r) => r.problems.map((p) => [r.line, r.hostname, p.code, p.message])),
    );
  if (d?.items)
    return formatTable(
      ['item', 'name', 'code', 'problem'],
      d.items.flatMap((r) => r.problems.map((p) => [r.item, r.name, p.code, p.message])),
    );
  if (d?.problems) return d.problems.map((p) => `  ${p.code}: ${p.message}`).join('\n');
  return '';
}

program.parseAsync(process.argv).catch((error: unknown) => {
  if (error instanceof ApiError) {
    if (globals().json)
      console.error(
        JSON.stringify({ error: { code: error.code, message: error.message, details: error.details } }, null, 2),
      );
    else {
      console.error(`error: ${error.message} [${error.code}]`);
      const more = describeDetails(error.details);
      if (more) console.error(more);
    }
  } else {
    console.error(`error: ${(error as Error).message}`);
  }
  process.exit(1);
});
