/**
 * A relayed network: the client is two hops away behind ISC's dhcrelay. The server picks the network
 * from giaddr, takes relayed packets only from the relay listed for that network (dhcrelay sends from
 * its upstream address), answers the relay on port 67, and echoes option 82 back.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { ChildProcess } from 'node:child_process';
import { createRelayChain, type RelayChain } from '../helpers/netns.ts';
import { startServer, type ServerProcess } from '../helpers/server.ts';

const work = mkdtempSync(join(tmpdir(), 'kvt-relay-'));
let chain: RelayChain;
let server: ServerProcess;
let relay: ChildProcess;

before(async () => {
  chain = await createRelayChain('rly');
  server = await startServer(
    [
      '--roles',
      'api,dhcp',
      '--data-dir',
      join(work, 'data'),
      '--dhcp-server-id',
      chain.server.ip,
      '--log-level',
      'warn',
    ],
    {},
    60_000,
    { netns: chain.server.name },
  );
  const d = chain.relayedSubnet;
  const u = chain.serverSubnet;
  const site = `sites:\n  - name: lab\n    networks:\n      - { name: lab-boot, cidr: ${u}.0/24, gateway: ${u}.1 }\n      - { name: lab-far, cidr: ${d}.0/24, gateway: ${d}.1, relays: [${u}.2], dynamicRange: { start: ${d}.100, end: ${d}.199 } }\n`;
  await chain.server.exec('curl', [
    '-sS',
    '-X',
    'POST',
    '-H',
    'content-type: application/yaml',
    '--data-binary',
    site,
    `${server.url}/api/v1/import/site`,
  ]);
  // -a: add option 82 (agent information) with the circuit id, to check it is echoed back.
  relay = chain.relay.spawn(
    'dhcrelay',
    ['-4', '-d', '-a', '-iu', chain.relay.upstreamDevice, '-id', chain.relay.downstreamDevice, chain.server.ip],
    { stdio: 'ignore' },
  );
  await new Promise((r) => setTimeout(r, 1000));
});
after(async () => {
  relay?.kill();
  await server?.kill();
  await chain?.cleanup();
  rmSync(work, { recursive: true, force: true });
});

test('a client behind dhcrelay gets an address on the relayed network', { timeout: 120_000 }, async () => {
  const lf = join(work, 'leases');
  writeFileSync(lf, '');
  await chain.client.exec(
    'dhclient',
    ['-4', '-1', '-v', '-lf', lf, '-pf', join(work, 'pid'), '-sf', '/sbin/dhclient-script', chain.client.device],
    { timeoutMs: 60_000 },
  );
  const { stdout } = await chain.client.exec('ip', ['-4', '-o', 'addr', 'show', 'dev', chain.client.device]);
  const address = /inet (\S+)\/24/.exec(stdout)?.[1];
  assert.ok(address?.startsWith(`${chain.relayedSubnet}.`), `got ${address}`);
  const last = Number(address!.split('.')[3]);
  assert.ok(last >= 100 && last <= 199);
  assert.match(
    readFileSync(lf, 'utf8'),
    new RegExp(`option routers ${chain.relayedSubnet.replace(/\./g, '\\.')}\\.1;`),
  );
  const stats = JSON.parse((await chain.server.exec('curl', ['-sS', `${server.url}/api/v1/dhcp/stats`])).stdout);
  assert.equal(stats.pools.find((p: { network: string }) => p.network === 'lab-far').bound, 1);
  assert.equal(stats.policy.noNetwork, 0);
});
