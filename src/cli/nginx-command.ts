/**
 * kvmfleet nginx-config SITE [--trees-dir DIR] [--listen host:port]: an nginx that serves the
 * site's install trees itself and passes everything else to its live boot HTTP nodes
 * (cluster/nginx.ts). Printed on stdout, to be checked with `nginx -t -c FILE`.
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { DEFAULT_NGINX_TREES_DIR } from '../cluster/nginx.ts';
import type { CliContext } from './vm-commands.ts';

export function registerNginxCommand(program: Command, ctx: CliContext): void {
  program
    .command('nginx-config <site>')
    .description(
      "nginx configuration serving the site's install trees itself in front of its live boot HTTP nodes (check it with nginx -t -c)",
    )
    .option('--listen <host:port>', 'where nginx listens for machines (the boot HTTP address)', '*:8081')
    .option('--trees-dir <dir>', 'the install trees on the nginx machine (what the boot nodes serve under /trees/)')
    .action(async (site: string, o: { listen: string; treesDir?: string }) => {
      const query = new URLSearchParams({
        listen: o.listen,
        // A relative directory is the operator's, where the command runs: nginx needs it absolute.
        treesDir: o.treesDir ? resolve(o.treesDir) : DEFAULT_NGINX_TREES_DIR,
      }).toString();
      const path = `/api/v1/sites/${encodeURIComponent(site)}/nginx.conf?${query}`;
      process.stdout.write(await ctx.client().request<string>('GET', path));
    });
}
