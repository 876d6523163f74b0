import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decideBoot, type BootInput, type Platform } from '../../src/boot/decide.ts';
import { renderIpxeScript } from '../../src/boot/ipxe-script.ts';
import type { BuildState } from '../../src/store/schema.ts';

const plan = {
  kernelUrl: 'http://boot/boot/files/T/kernel',
  initrdUrl: 'http://boot/boot/files/T/initrd',
  kernelArgs: 'inst.ks=http://boot/boot/ks/T ip=dhcp',
};
const SELF = 'http://boot/boot/${mac:hexhyp}?platform=${platform}';

/** Every build state × client platform × admission outcome → the action and what the script must contain. */
const table: [BuildState | 'unknown', 'admitted' | 'queued' | 'no-profile', Platform | undefined, string, RegExp][] =
  [];
for (const platform of ['pcbios', 'efi', undefined] as const) {
  table.push([
    'unknown',
    'queued',
    platform,
    'wait',
    /sleep 30\nchain --replace --autofree http:\/\/boot\/boot\/\$\{mac:hexhyp\}/,
  ]);
  table.push(['discovered', 'queued', platform, 'wait', /waiting to be adopted/]);
  table.push(['failed', 'queued', platform, 'wait', /failed; rebuild it/]);
  for (const state of ['ready', 'building'] as const) {
    table.push([
      state,
      'admitted',
      platform,
      'install',
      /^#!ipxe\n.*\nkernel http:\/\/boot\/boot\/files\/T\/kernel initrd=initrd.img inst.ks=http:\/\/boot\/boot\/ks\/T ip=dhcp\ninitrd --name initrd.img http:\/\/boot\/boot\/files\/T\/initrd\nboot\n$/,
    ]);
    table.push([state, 'queued', platform, 'wait', /number 4 in the queue/]);
    table.push([state, 'no-profile', platform, 'wait', /has no profile/]);
  }
  table.push([
    'built',
    'queued',
    platform,
    'local',
    platform === 'pcbios' ? /sanboot --no-describe --drive 0x80 \|\| exit/ : /\nexit\n$/,
  ]);
}

for (const [state, admission, platform, action, script] of table) {
  test(`${state} host, ${admission}, ${platform ?? 'unknown platform'} → ${action}`, () => {
    const input: BootInput = {
      host:
        state === 'unknown'
          ? undefined
          : {
              hostname: 'hv1',
              buildState: state,
              hasProfile: admission !== 'no-profile',
              install: admission === 'admitted' ? plan : undefined,
              queuePosition: admission === 'queued' ? 4 : undefined,
            },
      platform,
      retrySeconds: 30,
    };
    const decision = decideBoot(input);
    assert.equal(decision.action, action);
    const text = renderIpxeScript(decision, SELF);
    assert.match(text, /^#!ipxe\n/);
    assert.match(text, script);
    // iPXE must never be chainloaded again from an iPXE script: no .kpxe/.efi, ever.
    assert.doesNotMatch(text, /undionly|ipxe\.efi|snponly/);
  });
}

test('an install plan with characters iPXE would interpret is refused', () => {
  const bad = { action: 'install' as const, hostname: 'x', plan: { ...plan, kernelArgs: 'a ${evil}' } };
  assert.throws(() => renderIpxeScript(bad, SELF), /unsafe kernel arguments/);
  assert.throws(
    () => renderIpxeScript({ ...bad, plan: { ...plan, kernelUrl: 'http://x/a b' } }, SELF),
    /unsafe kernel URL/,
  );
});
