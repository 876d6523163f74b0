/** The console's reading of a host timeline into install steps (console/src/timeline.ts). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { stepTimes } from '../../console/src/timeline.ts';

const at = (n: number) => `2026-11-25T10:00:${String(n).padStart(2, '0')}.000Z`;
const timeline = (...kinds: string[]) => kinds.map((kind, i) => ({ kind, at: at(i) }));

test('a first install: every step at its first event; the firmware DHCP, not iPXE’s', () => {
  const times = stepTimes(
    timeline('dhcp', 'tftp', 'dhcp', 'build-started', 'script', 'kernel', 'initrd', 'kickstart', 'built'),
  );
  assert.deepEqual(Object.fromEntries(times), {
    dhcp: at(0),
    tftp: at(1),
    script: at(3),
    kernel: at(5),
    kickstart: at(7),
    built: at(8),
  });
});

test('UEFI HTTP boot: the firmware’s HTTP download of ipxe.efi is the boot-loader step', () => {
  const times = stepTimes(timeline('dhcp', 'firmware', 'dhcp', 'build-started'));
  assert.deepEqual(Object.fromEntries(times), { dhcp: at(0), tftp: at(1), script: at(3) });
});

test('mid-install: later steps are not reached yet', () => {
  const times = stepTimes(timeline('dhcp', 'tftp', 'dhcp', 'build-started', 'script', 'kernel'));
  assert.deepEqual([...times.keys()], ['dhcp', 'tftp', 'script', 'kernel']);
});

test('a rebuild starts over: nothing of the previous install counts', () => {
  const old = ['dhcp', 'tftp', 'build-started', 'kernel', 'kickstart', 'built'];
  assert.deepEqual([...stepTimes(timeline(...old, 'rebuild-requested')).keys()], []);
  const times = stepTimes(timeline(...old, 'rebuild-requested', 'dhcp', 'tftp', 'dhcp', 'build-started'));
  assert.deepEqual(Object.fromEntries(times), { dhcp: at(7), tftp: at(8), script: at(10) });
});

test('a failed build, a machine waiting in the queue, an adopted one', () => {
  assert.deepEqual([...stepTimes(timeline('dhcp', 'build-started', 'kernel', 'build-failed')).keys()], []);
  const queued = stepTimes(timeline('dhcp', 'tftp', 'dhcp', 'script', 'queued', 'script'));
  assert.deepEqual([...queued.keys()], ['dhcp', 'tftp'], 'the script step means the build started, not a wait');
  const adopted = stepTimes(timeline('discovered', 'dhcp', 'script', 'adopted', 'dhcp', 'build-started'));
  assert.deepEqual(Object.fromEntries(adopted), { dhcp: at(4), script: at(5) });
});
