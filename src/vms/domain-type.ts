/**
 * Which libvirt domain type a hypervisor can run for an architecture, from its capabilities XML:
 * "kvm" where the host offers it, else "qemu" (TCG, software emulation). Capabilities list kvm
 * whenever /dev/kvm exists, even when qemu cannot use it (wrong permissions, no VT-x exposed), so
 * callers that start a kvm domain must fall back to qemu when the start fails on KVM.
 */
export type DomainType = 'kvm' | 'qemu';

export function domainTypesFor(capabilitiesXml: string, arch = 'x86_64'): DomainType[] {
  const types: DomainType[] = [];
  // Each <guest> holds one <arch name='…'> with the <domain type='…'/> it supports.
  for (const guest of capabilitiesXml.split('<guest>').slice(1)) {
    const archBlock = new RegExp(`<arch name=['"]${arch}['"]>([\\s\\S]*?)</arch>`).exec(guest)?.[1];
    if (!archBlock) continue;
    for (const match of archBlock.matchAll(/<domain type=['"](kvm|qemu)['"]/g)) {
      const type = match[1] as DomainType;
      if (!types.includes(type)) types.push(type);
    }
  }
  return types.sort((a, b) => (a === 'kvm' ? -1 : b === 'kvm' ? 1 : 0));
}

/** The preferred type: kvm when offered, else qemu; undefined when the arch cannot run at all. */
export function preferredDomainType(capabilitiesXml: string, arch = 'x86_64'): DomainType | undefined {
  return domainTypesFor(capabilitiesXml, arch)[0];
}

/** Whether a failed start was KVM itself failing (so a qemu/TCG definition is worth a try). */
export function isKvmUnavailable(message: string): boolean {
  return (
    /kvm/i.test(message) &&
    /(failed to initialize|Could not access|not available|permission denied|No such file|failed to set MSR|kvm_buf_set_msrs)/i.test(
      message,
    )
  );
}
