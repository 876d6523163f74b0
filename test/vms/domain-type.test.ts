import assert from 'node:assert/strict';
import { test } from 'node:test';
import { domainTypesFor, isKvmUnavailable, preferredDomainType } from '../../src/vms/domain-type.ts';

const caps = (domains: string[]) =>
  `<capabilities><host/><guest><os_type>hvm</os_type><arch name='i686'><domain type='qemu'/></arch></guest><guest><os_type>hvm</os_type><arch name='x86_64'><wordsize>64</wordsize>${domains.map((d) => `<domain type='${d}'/>`).join('')}</arch></guest></capabilities>`;

test('kvm is preferred when offered, qemu otherwise, nothing for a missing arch', () => {
  assert.deepEqual(domainTypesFor(caps(['qemu', 'kvm'])), ['kvm', 'qemu']);
  assert.equal(preferredDomainType(caps(['qemu', 'kvm'])), 'kvm');
  assert.equal(preferredDomainType(caps(['qemu'])), 'qemu');
  assert.equal(preferredDomainType(caps(['qemu']), 'aarch64'), undefined);
  assert.deepEqual(domainTypesFor(caps(['kvm']), 'i686'), ['qemu']);
});

test('a start that failed on KVM is recognised (libvirt 9 / QEMU 7 messages)', () => {
  assert.ok(
    isKvmUnavailable(
      'internal error: qemu unexpectedly closed the monitor: Could not access KVM kernel module: Permission denied',
    ),
  );
  assert.ok(isKvmUnavailable('qemu-system-x86_64: -accel kvm: failed to initialize kvm: Permission denied'));
  // Nested virtualisation where /dev/kvm opens but the host CPU's MSRs cannot be set (this machine):
  assert.ok(
    isKvmUnavailable(
      'internal error: qemu unexpectedly closed the monitor: qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69\nqemu-system-x86_64: ../../target/i386/kvm/kvm.c:3183: kvm_buf_set_msrs: Assertion failed.',
    ),
  );
  assert.ok(!isKvmUnavailable('Requested operation is not valid: domain is already running'));
});
