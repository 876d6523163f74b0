/** CLI verbs for users, tokens, login and the audit log. */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { formatTable } from './table.ts';
import type { CliContext } from './vm-commands.ts';

/** A password from standard input (first line): never from an argument, which `ps` would show. */
function passwordFromStdin(): string {
  const text = readFileSync(0, 'utf8').split('\n')[0] ?? '';
  if (!text) throw new Error('give the password on standard input');
  return text;
}

export function registerAuthCommands(program: Command, ctx: CliContext): void {
  const { client, print } = ctx;
  const enc = encodeURIComponent;

  program
    .command('login <user>')
    .description('password login (password on standard input); prints a session token for KVMFLEET_TOKEN')
    .action(async (user: string) => {
      const data = await client().request<{ token: string; expiresAt: string }>('POST', '/api/v1/login', {
        json: { name: user, password: passwordFromStdin() },
      });
      print(data, () => `export KVMFLEET_TOKEN=${data.token}   # valid until ${data.expiresAt}`);
    });
  program.command('whoami').action(async () => {
    const data = await client().request<{
      user: string | null;
      role: string | null;
      permissions: string[];
      open?: boolean;
    }>('GET', '/api/v1/whoami');
    print(data, () =>
      data.open
        ? 'no users yet: the API is open on loopback (create an admin: kvmfleet user add NAME --role admin)'
        : `${data.user} (${data.role}; ${data.permissions.join(', ')})`,
    );
  });

  const user = program.command('user').description('users of the API and console (admin)');
  user.command('list').action(async () => {
    const data = await client().request<{ name: string; role: string; createdAt: string }[]>('GET', '/api/v1/users');
    print(data, () =>
      formatTable(
        ['name', 'role', 'created'],
        data.map((u) => [u.name, u.role, u.createdAt]),
      ),
    );
  });
  user
    .command('add <name>')
    .requiredOption('--role <role>', 'admin, operator or viewer')
    .option('--password-stdin', 'set a password (for console login) from standard input')
    .option('--with-token', 'also create a token for the user and print it')
    .action(async (name: string, o: { role: string; passwordStdin?: boolean; withToken?: boolean }) => {
      const data = await client().request<{ name: string; role: string; token?: string }>('POST', '/api/v1/users', {
        json: {
          name,
          role: o.role,
          withToken: o.withToken ?? false,
          ...(o.passwordStdin ? { password: passwordFromStdin() } : {}),
        },
      });
      print(
        data,
        () => `user ${data.name} added (${data.role})${data.token ? `\ntoken (shown once): ${data.token}` : ''}`,
      );
    });
  user.command('rm <name>').action(async (name: string) => {
    await client().request('DELETE', `/api/v1/users/${enc(name)}`);
    if (!ctx.json()) console.log(`user ${name} removed`);
  });

  const token = program.command('token').description('API tokens');
  token
    .command('create <name>')
    .option('--scope <scope...>', 'read, write, admin (default: all your role allows)')
    .option('--expires-days <days>', 'valid for this many days', Number)
    .option('--user <user>', 'for another user (admin)')
    .action(async (name: string, o: { scope?: string[]; expiresDays?: number; user?: string }) => {
      const data = await client().request<{ token: string; id: number; scopes: string[] }>('POST', '/api/v1/tokens', {
        json: { name, scopes: o.scope, expiresInDays: o.expiresDays, user: o.user },
      });
      print(data, () => `token ${data.id} (shown once): ${data.token}`);
    });
  token.command('list').action(async () => {
    const data = await client().request<
      {
        id: number;
        user: string;
        name: string;
        scopes: string[];
        expiresAt: string | null;
        lastUsedAt: string | null;
      }[]
    >('GET', '/api/v1/tokens');
    print(data, () =>
      formatTable(
        ['id', 'user', 'name', 'scopes', 'expires', 'last used'],
        data.map((t) => [t.id, t.user, t.name, t.scopes.length ? t.scopes : 'role', t.expiresAt, t.lastUsedAt]),
      ),
    );
  });
  token.command('revoke <id>').action(async (id: string) => {
    await client().request('DELETE', `/api/v1/tokens/${enc(id)}`);
    if (!ctx.json()) console.log(`token ${id} revoked`);
  });

  program
    .command('audit')
    .description('the audit log: mutating API calls, newest first (admin)')
    .option('--actor <user>')
    .option('--limit <n>', '', '50')
    .action(async (o: { actor?: string; limit: string }) => {
      const query = new URLSearchParams({ limit: o.limit, ...(o.actor ? { actor: o.actor } : {}) }).toString();
      const data = await client().request<
        { at: string; actor: string; action: string; target: string; result: string }[]
      >('GET', `/api/v1/audit?${query}`);
      print(data, () =>
        formatTable(
          ['at', 'actor', 'action', 'target', 'result'],
          data.map((e) => [e.at, e.actor, e.action, e.target, e.result]),
        ),
      );
    });

  program
    .command('events')
    .description('follow live events: host boot/build steps, activity summaries, job progress, VM states')
    .option('--types <types>', 'host,activity,job,vm (default: all)')
    .action(async (o: { types?: string }) => {
      await client().events(`/api/v1/events${o.types ? `?types=${enc(o.types)}` : ''}`, (name, data) => {
        if (ctx.json()) return console.log(JSON.stringify(data));
        const e = data as Record<string, unknown>;
        const time = new Date().toISOString().slice(11, 19);
        const line =
          name === 'host'
            ? `${e.host} ${e.kind}${e.detail && Object.keys(e.detail).length ? ` ${JSON.stringify(e.detail)}` : ''}`
            : name === 'activity'
              ? Object.entries(e.counts as Record<string, number>)
                  .map(([k, v]) => `${k} ${v}`)
                  .join(', ') + ` in ${e.seconds} s`
              : name === 'job'
                ? `job ${e.job} ${e.state} ${e.done}/${e.total}${e.failed ? ` (${e.failed} failed)` : ''}`
                : `${e.name} on ${e.hypervisor}: ${e.state}`;
        console.log(`${time} ${name.padEnd(8)} ${line}`);
      });
    });
}
