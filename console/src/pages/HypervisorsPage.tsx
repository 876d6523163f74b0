/** Hypervisors: health, domain type, CPUs, memory and storage pool use, refreshed from libvirt on demand. */
import { api, enc } from '../api.ts';
import type { Hypervisor } from '../types.ts';
import { ActionButton, bytes, ErrorNote, ProgressBar, Section, Time, useCan, useLoad } from '../ui.tsx';

export function HypervisorsPage() {
  const hypervisors = useLoad(() => api<Hypervisor[]>('GET', '/api/v1/hypervisors'), []);
  const canWrite = useCan('write');
  return (
    <Section title="Hypervisors">
      <ErrorNote error={hypervisors.error} />
      {hypervisors.data?.length === 0 && (
        <p className="muted">
          None yet: a host joins its site's hypervisors when it is built, or register one with `kvmfleet hypervisor
          add`.
        </p>
      )}
      {!!hypervisors.data?.length && (
        <table>
          <thead>
            <tr>
              <th>Name</th>
              <th>Site</th>
              <th>Health</th>
              <th>Type</th>
              <th className="num">CPUs</th>
              <th className="num">Memory</th>
              <th className="wide">Storage pool used</th>
              <th>Checked</th>
              {canWrite && <th />}
            </tr>
          </thead>
          <tbody>
            {hypervisors.data.map((hv) => {
              const capacity = hv.poolCapacityBytes ?? 0;
              const used = capacity - (hv.poolAvailableBytes ?? 0);
              return (
                <tr key={hv.name} data-hypervisor={hv.name}>
                  <td title={hv.uri}>{hv.name}</td>
                  <td>{hv.site}</td>
                  <td>
                    <span className={`badge ${hv.health}`} title={hv.lastError ?? ''}>
                      {hv.health}
                    </span>
                  </td>
                  <td>{hv.domainType ?? '—'}</td>
                  <td className="num">{hv.cpus ?? '—'}</td>
                  <td className="num">{hv.memoryMiB === null ? '—' : bytes(hv.memoryMiB * 1024 * 1024)}</td>
                  <td>
                    {capacity ? (
                      <span title={`${bytes(used)} of ${bytes(capacity)} in pool ${hv.storagePool}`}>
                        <ProgressBar
                          done={used}
                          total={capacity}
                          label={`pool ${hv.storagePool}`}
                          text={`${bytes(used)} / ${bytes(capacity)}`}
                        />
                      </span>
                    ) : (
                      '—'
                    )}
                  </td>
                  <td>
                    <Time at={hv.checkedAt} />
                  </td>
                  {canWrite && (
                    <td>
                      <ActionButton
                        label="Refresh"
                        action={async () => (
                          await api('POST', `/api/v1/hypervisors/${enc(hv.name)}/refresh`),
                          hypervisors.reload()
                        )}
                      />
                    </td>
                  )}
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </Section>
  );
}
