/** iPXE scripts for each boot decision. Values are interpolated only after checking they are safe in a script line. */
import type { BootDecision } from './decide.ts';

/** Characters iPXE could read as syntax (spaces split arguments, ${} expands, ||/&& chain) are refused. */
const SAFE_URL = /^https?:\/\/[A-Za-z0-9._~:/?#[\]@!$&'()*+,;=%-]+$/;
const SAFE_ARG = /^[A-Za-z0-9._~:/?#[\]@!$'()*+,;=%= -]*$/;

function checked(value: string, pattern: RegExp, what: string): string {
  if (!pattern.test(value) || value.includes('${'))
    throw new Error(`unsafe ${what} for an iPXE script: ${JSON.stringify(value)}`);
  return value;
}

/**
 * @param scriptUrl the URL iPXE fetches its script from, with iPXE's own variables in it
 *   (e.g. http://boot/boot/${mac:hexhyp}?platform=${platform}); a waiting machine chains back to it.
 */
export function renderIpxeScript(decision: BootDecision, scriptUrl: string): string {
  switch (decision.action) {
    case 'install': {
      const { plan } = decision;
      return [
        '#!ipxe',
        `echo kvmfleet: installing ${decision.hostname}`,
        `kernel ${checked(plan.kernelUrl, SAFE_URL, 'kernel URL')} initrd=initrd.img ${checked(plan.kernelArgs, SAFE_ARG, 'kernel arguments')}`,
        `initrd --name initrd.img ${checked(plan.initrdUrl, SAFE_URL, 'initrd URL')}`,
        'boot',
        '',
      ].join('\n');
    }
    case 'local':
      // BIOS: hand over to the first disk directly. UEFI (or unknown): return to the firmware, which
      // tries the next boot entry — the disk, since the order is disk then network.
      return decision.platform === 'pcbios'
        ? [
            '#!ipxe',
            `echo kvmfleet: ${decision.hostname} is built; booting the local disk`,
            'sanboot --no-describe --drive 0x80 || exit',
            '',
          ].join('\n')
        : ['#!ipxe', `echo kvmfleet: ${decision.hostname} is built; booting the local disk`, 'exit', ''].join('\n');
    case 'wait':
      return [
        '#!ipxe',
        `echo kvmfleet: ${decision.message.replace(/[^\w .:;,()/-]/g, '')}`,
        `echo kvmfleet: retrying in ${decision.retrySeconds} s`,
        `sleep ${decision.retrySeconds}`,
        `chain --replace --autofree ${scriptUrl}`,
        '',
      ].join('\n');
  }
}
