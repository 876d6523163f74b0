/** Machines that network-booted with an unknown MAC: adopt one (name, network, address, profile) and it installs at its next retry. */
import { useState } from 'react';
import { api, enc } from '../api.ts';
import { useLiveEvents } from '../live.ts';
import { href } from '../router.ts';
import type { Host, Network, Profile } from '../types.ts';
import { ActionButton, ErrorNote, Section, Time, useCan, useLoad, useThrottled } from '../ui.tsx';

export function DiscoveredPage() {
  const hosts = useLoad(() => api<Host[]>('GET', '/api/v1/hosts?state=discovered'), []);
  const networks = useLoad(() => api<Network[]>('GET', '/api/v1/networks'), []);
  const profiles = useLoad(() => api<Profile[]>('GET', '/api/v1/profiles'), []);
  const reload = useThrottled(hosts.reload, 2000);
  useLiveEvents((event) => event.type === 'host' && event.kind === 'discovered' && reload());
  const canWrite = useCan('write');

  return (
    <Section title="Discovered machines">
      <ErrorNote error={hosts.error ?? networks.error ?? profiles.error} />
      {hosts.data?.length === 0 && <p className="muted">None: every machine that network-booted is known.</p>}
      {!!hosts.data?.length && (
        <table>
          <thead>
            <tr>
              <th>Seen as</th>
              <th>MAC</th>
              <th>Network</th>
              <th>Since</th>
              {canWrite && <th>Adopt as</th>}
            </tr>
          </thead>
          <tbody>
            {hosts.data.map((h) => (
              <tr key={h.hostname} data-host={h.hostname}>
                <td>
                  <a href={href(['hosts', h.hostname])}>{h.hostname}</a>
                </td>
                <td className="mono">{h.macs.join(' ')}</td>
                <td>{h.network ?? <span className="muted">unknown</span>}</td>
                <td>
                  <Time at={h.stateChangedAt} />
                </td>
                {canWrite && (
                  <td>
                    <AdoptForm
                      host={h}
                      networks={networks.data ?? []}
                      profiles={profiles.data ?? []}
                      onAdopted={hosts.reload}
                    />
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Section>
  );
}

function AdoptForm({
  host,
  networks,
  profiles,
  onAdopted,
}: {
  host: Host;
  networks: Network[];
  profiles: Profile[];
  onAdopted: () => void;
}) {
  const [hostname, setHostname] = useState('');
  const [network, setNetwork] = useState(host.network ?? '');
  const [ip, setIp] = useState('');
  const [profile, setProfile] = useState(profiles[0]?.name ?? '');
  const chosenProfile = profile || profiles[0]?.name || '';
  return (
    <div className="inline-form">
      <input
        aria-label="hostname"
        placeholder="hostname"
        value={hostname}
        onChange={(e) => setHostname(e.target.value)}
      />
      <select aria-label="network" value={network} onChange={(e) => setNetwork(e.target.value)}>
        <option value="">network…</option>
        {networks.map((n) => (
          <option key={n.name} value={n.name}>
            {n.name} ({n.cidr})
          </option>
        ))}
      </select>
      <input
        aria-label="address"
        className="narrow-ip"
        placeholder="address (optional)"
        value={ip}
        onChange={(e) => setIp(e.target.value)}
      />
      <select aria-label="profile" value={chosenProfile} onChange={(e) => setProfile(e.target.value)}>
        {profiles.map((p) => (
          <option key={p.name}>{p.name}</option>
        ))}
      </select>
      <ActionButton
        label="Adopt"
        disabled={!hostname.trim() || !network || !chosenProfile}
        action={async () => {
          await api('POST', `/api/v1/hosts/${enc(host.hostname)}/adopt`, {
            json: {
              hostname: hostname.trim(),
              network,
              profile: chosenProfile,
              ...(ip.trim() ? { ip: ip.trim() } : {}),
            },
          });
          onAdopted();
        }}
      />
    </div>
  );
}
