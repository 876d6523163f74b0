/**
 * The SSH peer killed in the middle of `template seal` on a remote hypervisor (the same libvirtd
 * reached as qemu+ssh:// through a real sshd, test/helpers/sshd.ts; virt-sysprep runs over SSH): the
 * sshd and everything it started (the session, virt-sysprep, libguestfs' appliance) are SIGKILLed.
 * Promises checked: the kvmfleet process (api, http, tftp, worker) stays alive; the seal is answered
 * with an error that gives the reason; the API, boot HTTP and TFTP answered throughout (probed every
 * 250 ms); the source VM is still there. (The DHCP role is not run here: it would need the lab's
 * namespaces, which cannot reach an sshd on this machine's loopback.)
 */
import { execFile } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, startSshd } from '../../test/helpers/sshd.ts';
import { trace, withCleanup } from '../lib/cleanup.ts';
import { commandOf, descendants, killAll } from '../lib/processes.ts';
import { Findings, type Scenario, type ScenarioResult } from '../lib/scenario.ts';
import { apiError } from '../lib/lab.ts';
import { createVmLab, ok } from '../lib/vm-lab.ts';

const run = promisify(execFile);

export const sshSeal: Scenario = {
  name: 'ssh-seal',
  fault: 'SSH peer killed mid template seal',
  run: () =>
    withCleanup(async (defer): Promise<ScenarioResult> => {
      const findings = new Findings();
      const sshd = await startSshd();
      const sshdPid = Number(readFileSync(join(sshd.dir, 'sshd.pid'), 'utf8').trim());
      trace(`sshd ${sshdPid} on port ${sshd.port}`);
      // Whatever the killed sshd had started and survived it (an orphaned appliance) goes too.
      let leftovers: number[] = [];
      defer('sshd', async () => {
        killAll(leftovers.filter((pid) => commandOf(pid) !== ''));
        // sshd.stop() waits for an 'exit' that a SIGKILLed sshd has already sent: only a live one is stopped.
        if (commandOf(sshdPid) !== '') await sshd.stop();
        else rmSync(sshd.dir, { recursive: true, force: true });
      });
      const httpPort = await freePort();
      const tftpPort = await freePort();
      const lab = await createVmLab(defer, 'sseal', [
        '--roles',
        'api,http,tftp,worker',
        '--http-listen',
        `127.0.0.1:${httpPort}`,
        '--tftp-listen',
        `127.0.0.1:${tftpPort}`,
      ]);
      trace('VM lab up');
      const uri = `qemu+ssh://root@127.0.0.1:${sshd.port}/system?keyfile=${sshd.clientKey}&known_hosts=${sshd.knownHosts}`;
      await ok(lab, 'POST', '/api/v1/sites', { name: 'chaos', buildCap: 10 });
      await ok(lab, 'POST', '/api/v1/hypervisors', {
        name: 'hv-ssh',
        uri,
        site: 'chaos',
        storagePool: lab.pool,
        bridge: lab.bridge,
        maxParallel: 2,
        domainType: 'qemu',
      });
      const source = `${lab.prefix}-src`;
      await ok(lab, 'POST', '/api/v1/vms', {
        name: source,
        hypervisor: 'hv-ssh',
        memoryMiB: 128,
        vcpus: 1,
        source: { kind: 'import', disk: lab.sourceDisk },
        start: false,
      });

      const probes = { api: [0, 0], http: [0, 0], tftp: [0, 0] };
      const failedProbes: string[] = [];
      let probing = true;
      const probe = async (role: keyof typeof probes, check: () => Promise<boolean>) => {
        while (probing) {
          const answered = await check().catch(() => false);
          probes[role][answered ? 0 : 1]! += 1;
          if (!answered && failedProbes.length < 3) failedProbes.push(`${role} at ${new Date().toISOString()}`);
          await new Promise((r) => setTimeout(r, 250));
        }
      };
      const probing$ = Promise.all([
        probe('api', async () => (await fetch(`${lab.server.url}/healthz`, { signal: AbortSignal.timeout(3000) })).ok),
        probe(
          'http',
          async () => (await fetch(`http://127.0.0.1:${httpPort}/healthz`, { signal: AbortSignal.timeout(3000) })).ok,
        ),
        probe(
          'tftp',
          async () =>
            Number(
              (
                await run('curl', [
                  '-sS',
                  '-m',
                  '3',
                  '-o',
                  '/dev/null',
                  '-w',
                  '%{size_download}',
                  `tftp://127.0.0.1:${tftpPort}/undionly.kpxe`,
                ])
              ).stdout,
            ) > 0,
        ),
      ]);

      trace('source VM defined on the SSH hypervisor; sealing');
      const sealAt = Date.now();
      const seal = lab.api('POST', '/api/v1/templates', { vm: source, name: `${lab.prefix}-tmpl` });
      // Kill once virt-sysprep runs on the "hypervisor" (a descendant of the sshd).
      let sysprepSeen = false;
      while (Date.now() - sealAt < 60_000) {
        if (descendants(sshdPid).some((pid) => /virt-sysprep/.test(commandOf(pid)))) {
          sysprepSeen = true;
          break;
        }
        await new Promise((r) => setTimeout(r, 200));
      }
      await new Promise((r) => setTimeout(r, 3000)); // well into it: the appliance is up
      const tree = descendants(sshdPid);
      trace(
        `killing sshd and ${tree.length} descendants: ${tree.map((pid) => `${pid} ${commandOf(pid).slice(0, 60)}`).join('; ')}`,
      );
      leftovers = tree;
      killAll([sshdPid, ...tree]);
      const killedAt = Date.now();
      const answer = await seal;
      trace(`seal answered ${answer.status}`);
      const answeredS = (Date.now() - killedAt) / 1000;
      await new Promise((r) => setTimeout(r, 3000)); // the roles keep answering after the error too
      probing = false;
      await probing$;
      const error = apiError(answer.body);
      const reason = `${error.code} ${error.message}`.trim();
      // What the server logged about it (the cause, when the answer hides it).
      const logged =
        lab.server.lines
          .filter((l) => /unexpected error|ssh|sysprep|ECONNRESET|closed/i.test(l))
          .map((l) => (/"message":"([^"]*)"/.exec(l)?.[1] ?? l).slice(0, 120))[0] ?? 'nothing';
      const vm = await lab.api('GET', `/api/v1/vms/${source}`);
      findings.check(sysprepSeen, 'virt-sysprep was never seen running over SSH: the kill tested nothing');
      findings.check(answer.status >= 400, `the seal was answered ${answer.status} although its SSH peer died`);
      findings.check(
        /ssh|connection|closed|reset/i.test(error.message),
        `the seal's error does not say the SSH peer went away (${answer.status} "${reason}"; the log says: ${logged})`,
      );
      const missed = probes.api[1]! + probes.http[1]! + probes.tftp[1]!;
      findings.check(missed === 0, `roles missed probes: ${failedProbes.join(', ')}`);
      findings.check(vm.status === 200, `the source VM answers ${vm.status} after the failed seal`);
      findings.check(
        lab.server.child.exitCode === null && lab.server.child.signalCode === null,
        'kvmfleet is not running',
      );
      for (const exit of lab.unexpectedExits) findings.failures.push(exit);
      return {
        figures: `killed sshd + ${tree.length} processes ${((killedAt - sealAt) / 1000).toFixed(0)} s into the seal; seal answered ${answer.status} ${answeredS.toFixed(1)} s later ("${reason.slice(0, 140)}"); probes answered api ${probes.api[0]}/${probes.api[0]! + probes.api[1]!}, http ${probes.http[0]}/${probes.http[0]! + probes.http[1]!}, tftp ${probes.tftp[0]}/${probes.tftp[0]! + probes.tftp[1]!}; process ${lab.unexpectedExits.length ? 'died' : 'alive'}`,
        lost: 0,
        failures: findings.failures,
      };
    }),
};
