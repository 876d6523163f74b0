/** VMs on every hypervisor with their live state and actions; templates, and a clone form. */
import { useState } from 'react';
import { api, enc } from '../api.ts';
import { useLiveEvents } from '../live.ts';
import { navigate } from '../router.ts';
import type { Hypervisor, Template, VmList } from '../types.ts';
import { ActionButton, ErrorNote, Section, StateBadge, Time, useCan, useLoad } from '../ui.tsx';

export function VmsPage() {
  const vms = useLoad(() => api<VmList>('GET', '/api/v1/vms'), []);
  const templates = useLoad(() => api<Template[]>('GET', '/api/v1/templates'), []);
  const [states, setStates] = useState<Record<string, string>>({});
  const canWrite = useCan('write');
  useLiveEvents((event) => {
    if (event.type === 'vm') setStates((s) => ({ ...s, [`${event.hypervisor}/${event.name}`]: event.state }));
    if (event.type === 'job' && event.item) vms.reload();
  });

  const act =
    (name: string, verb: string, query = '') =>
    async () => {
      await api('POST', `/api/v1/vms/${enc(name)}/${verb}${query}`);
      vms.reload();
    };

  return (
    <>
      <Section
        title="Virtual machines"
        actions={
          <button type="button" onClick={vms.reload}>
            Reload
          </button>
        }
      >
        <ErrorNote error={vms.error} />
        {vms.data?.vms.length === 0 && <p className="muted">No VMs yet.</p>}
        {!!vms.data?.vms.length && (
          <table>
            <thead>
              <tr>
                <th>Name</th>
                <th>Hypervisor</th>
                <th>State</th>
                <th className="num">vCPUs</th>
                <th className="num">Memory</th>
                <th>Template</th>
                <th>Address</th>
                {canWrite && <th>Actions</th>}
              </tr>
            </thead>
            <tbody>
              {vms.data.vms.map((vm) => {
                const state = states[`${vm.hypervisor}/${vm.name}`] ?? vm.state;
                const running = state === 'running' || state === 'paused';
                return (
                  <tr key={`${vm.hypervisor}/${vm.name}`} data-vm={vm.name}>
                    <td>{vm.name}</td>
                    <td>{vm.hypervisor}</td>
                    <td>
                      <StateBadge state={state} />
                      {!vm.live && (
                        <span className="muted" title="the hypervisor did not answer: last known state">
                          {' '}
                          (last known)
                        </span>
                      )}
                    </td>
                    <td className="num">{vm.vcpus}</td>
                    <td className="num">{vm.memoryMiB} MiB</td>
                    <td>{vm.template ? `${vm.template} (${vm.cloneKind})` : '—'}</td>
                    <td className="mono">{vm.ip ?? '—'}</td>
                    {canWrite && (
                      <td className="actions">
                        <ActionButton label="Start" disabled={running} action={act(vm.name, 'start')} />
                        <ActionButton
                          label="Shut down"
                          disabled={!running}
                          title="ACPI power button"
                          action={act(vm.name, 'shutdown', '?timeoutS=120')}
                        />
                        <ActionButton
                          label="Destroy"
                          danger
                          disabled={!running}
                          title="power off at once"
                          action={act(vm.name, 'destroy')}
                        />
                      </td>
                    )}
                  </tr>
                );
              })}
            </tbody>
          </table>
        )}
        {!!vms.data?.unmanaged.length && (
          <details>
            <summary>{vms.data.unmanaged.length} domain(s) kvmfleet does not manage</summary>
            <ul>
              {vms.data.unmanaged.map((d) => (
                <li key={`${d.hypervisor}/${d.name}`}>
                  {d.hypervisor}/{d.name}: {d.state}
                </li>
              ))}
            </ul>
          </details>
        )}
      </Section>
      <Section title="Templates">
        <ErrorNote error={templates.error} />
        {templates.data?.length === 0 && (
          <p className="muted">No templates: seal a shut-off VM with `kvmfleet template seal`.</p>
        )}
        {!!templates.data?.length && (
          <table>
            <thead>
              <tr>
                <th>Template</th>
                <th>Hypervisor</th>
                <th className="num">vCPUs</th>
                <th className="num">Memory</th>
                <th className="num">Linked clones</th>
                <th>Sealed</th>
              </tr>
            </thead>
            <tbody>
              {templates.data.map((t) => (
                <tr key={t.name} data-template={t.name}>
                  <td>{t.name}</td>
                  <td>{t.hypervisor}</td>
                  <td className="num">{t.vcpus}</td>
                  <td className="num">{t.memoryMiB} MiB</td>
                  <td className="num">{t.linkedClones}</td>
                  <td>
                    <Time at={t.sealedAt} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {canWrite && !!templates.data?.length && (
          <CloneForm templates={templates.data} onCloned={() => (vms.reload(), templates.reload())} />
        )}
      </Section>
    </>
  );
}

function CloneForm({ templates, onCloned }: { templates: Template[]; onCloned: () => void }) {
  const hypervisors = useLoad(() => api<Hypervisor[]>('GET', '/api/v1/hypervisors'), []);
  const [template, setTemplate] = useState(templates[0]!.name);
  const [name, setName] = useState('');
  const [kind, setKind] = useState<'linked' | 'full'>('linked');
  const [hypervisor, setHypervisor] = useState('');
  const [count, setCount] = useState('1');
  const [start, setStart] = useState(true);
  const many = Number(count) > 1;
  const site = hypervisors.data?.find(
    (h) => h.name === (hypervisor || templates.find((t) => t.name === template)?.hypervisor),
  )?.site;
  return (
    <form className="clone-form" onSubmit={(e) => e.preventDefault()}>
      <h3>Clone</h3>
      <label>
        Template
        <select name="template" value={template} onChange={(e) => setTemplate(e.target.value)}>
          {templates.map((t) => (
            <option key={t.name}>{t.name}</option>
          ))}
        </select>
      </label>
      <label>
        {many ? 'Name prefix' : 'Name'}
        <input name="clone-name" value={name} onChange={(e) => setName(e.target.value)} required />
      </label>
      <label>
        Count
        <input
          name="count"
          className="narrow"
          inputMode="numeric"
          value={count}
          onChange={(e) => setCount(e.target.value)}
        />
      </label>
      <label>
        Kind
        <select name="kind" value={kind} onChange={(e) => setKind(e.target.value as 'linked' | 'full')}>
          <option value="linked">linked (overlay on the template)</option>
          <option value="full">full (a copy)</option>
        </select>
      </label>
      <label>
        Hypervisor
        <select name="hypervisor" value={hypervisor} onChange={(e) => setHypervisor(e.target.value)}>
          <option value="">{many ? 'spread over the site' : 'placed by kvmfleet'}</option>
          {(hypervisors.data ?? []).map((h) => (
            <option key={h.name}>{h.name}</option>
          ))}
        </select>
      </label>
      <label className="check">
        <input type="checkbox" checked={start} onChange={(e) => setStart(e.target.checked)} /> start
      </label>
      <ActionButton
        label={many ? 'Start clone job' : 'Clone'}
        disabled={!name.trim() || !/^[1-9]\d{0,4}$/.test(count) || (many && !site)}
        action={async () => {
          if (many) {
            const job = await api<{ id: number }>('POST', '/api/v1/jobs/bulk-clone', {
              json: {
                template,
                count: Number(count),
                namePrefix: name.trim(),
                kind,
                site,
                start,
                ...(hypervisor ? { hypervisors: [hypervisor] } : {}),
              },
            });
            navigate(['jobs'], { job: String(job.id) });
          } else {
            await api('POST', `/api/v1/templates/${enc(template)}/clones`, {
              json: { name: name.trim(), kind, start, ...(hypervisor ? { hypervisor } : {}) },
            });
            onCloned();
          }
        }}
      />
    </form>
  );
}
