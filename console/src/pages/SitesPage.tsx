/** Sites: build progress (discovered, ready, queued, building, built, failed) and the build cap; imports of a site YAML and a hosts CSV. */
import { useEffect, useState } from 'react';
import { api, enc } from '../api.ts';
import { liveStream, useLiveEvents } from '../live.ts';
import { href } from '../router.ts';
import type { SiteBuilds, SiteProgress } from '../types.ts';
import { ActionButton, describe, ErrorNote, Section, StackedBar, Time, useCan, useLoad, useThrottled } from '../ui.tsx';

const ORDER = ['built', 'building', 'queued', 'failed', 'ready', 'discovered'] as const;

export function SitesPage() {
  const progress = useLoad(() => api<SiteProgress[]>('GET', '/api/v1/build-progress'), []);
  const reload = useThrottled(progress.reload, 1000);
  const [activity, setActivity] = useState<{ seconds: number; counts: Record<string, number>; at: number } | undefined>(
    () => {
      const last = liveStream.lastActivity;
      return last && Date.now() - last.at < last.event.seconds * 2000
        ? { seconds: last.event.seconds, counts: last.event.counts, at: last.at }
        : undefined;
    },
  );
  useLiveEvents((event) => {
    if (event.type === 'host') reload();
    if (event.type === 'activity') setActivity({ seconds: event.seconds, counts: event.counts, at: Date.now() });
  });
  // Summaries come only while something happens: once they stop, the last one is stale.
  useEffect(() => {
    const timer = setInterval(
      () => setActivity((a) => (a && Date.now() - a.at > a.seconds * 2000 ? undefined : a)),
      2000,
    );
    return () => clearInterval(timer);
  }, []);
  const canWrite = useCan('write');
  const [open, setOpen] = useState<string>();

  return (
    <>
      <Section title="Sites" actions={<Activity activity={activity} />}>
        <ErrorNote error={progress.error} />
        {progress.data && progress.data.length === 0 && (
          <p className="muted">No sites yet: import a site YAML below.</p>
        )}
        {progress.data && progress.data.length > 0 && (
          <table className="sites">
            <thead>
              <tr>
                <th>Site</th>
                <th>Hosts</th>
                <th className="wide">Build progress</th>
                {ORDER.map((s) => (
                  <th key={s} className="num">
                    {s}
                  </th>
                ))}
                <th>Build cap</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {progress.data.map((site) => [
                <tr key={site.site} data-site={site.site}>
                  <td>
                    <a href={href(['hosts'], { site: site.site })}>{site.site}</a>
                  </td>
                  <td className="num">{site.hosts}</td>
                  <td>
                    <StackedBar total={site.hosts} parts={ORDER.map((key) => ({ key, count: site.counts[key] }))} />
                  </td>
                  {ORDER.map((s) => (
                    <td key={s} className="num" data-count={s}>
                      <a href={href(['hosts'], { site: site.site, state: s === 'queued' ? 'ready' : s })}>
                        {site.counts[s]}
                      </a>
                    </td>
                  ))}
                  <td>
                    <CapEditor site={site.site} cap={site.cap} editable={canWrite} onSaved={progress.reload} />
                  </td>
                  <td>
                    <button
                      type="button"
                      className="link-button"
                      aria-expanded={open === site.site}
                      onClick={() => setOpen(open === site.site ? undefined : site.site)}
                    >
                      {open === site.site ? 'hide queue' : 'queue'}
                    </button>
                  </td>
                </tr>,
                open === site.site ? (
                  <tr key={`${site.site}-queue`} className="queue-row">
                    <td colSpan={ORDER.length + 5}>
                      <SiteQueue site={site.site} />
                    </td>
                  </tr>
                ) : null,
              ])}
            </tbody>
          </table>
        )}
      </Section>
      {canWrite && <ImportPanel onImported={progress.reload} />}
    </>
  );
}

/** Admission control of one site: who holds a build slot, and who waits for one, in order. */
function SiteQueue({ site }: { site: string }) {
  const builds = useLoad(() => api<SiteBuilds>('GET', `/api/v1/sites/${enc(site)}/builds`), [site]);
  const reload = useThrottled(builds.reload, 1000);
  useLiveEvents((event) => event.type === 'host' && reload());
  if (builds.error) return <ErrorNote error={builds.error} />;
  if (!builds.data) return <span className="muted">loading…</span>;
  const { cap, building, queued } = builds.data;
  return (
    <div className="queue" data-queue={site}>
      <div>
        <h3>
          Building: {building.length} of {cap} slots
        </h3>
        {building.length === 0 ? (
          <p className="muted">nothing building</p>
        ) : (
          <ol>
            {building.map((b) => (
              <li key={b.hostname}>
                <a href={href(['hosts', b.hostname])}>{b.hostname}</a> since <Time at={b.since} />
              </li>
            ))}
          </ol>
        )}
      </div>
      <div>
        <h3>Queued: {queued.length}</h3>
        {queued.length === 0 ? (
          <p className="muted">no machine waiting</p>
        ) : (
          <ol>
            {queued.map((q) => (
              <li key={q.hostname} value={q.position}>
                <a href={href(['hosts', q.hostname])}>{q.hostname}</a> waiting since <Time at={q.since} />
              </li>
            ))}
          </ol>
        )}
      </div>
    </div>
  );
}

/** What the boot servers did in the last summary period (DHCP, TFTP, scripts, Kickstarts, builds), from the event stream. */
function Activity({
  activity,
}: {
  activity: { seconds: number; counts: Record<string, number>; at: number } | undefined;
}) {
  if (!activity) return <span className="muted activity">no boot activity right now</span>;
  const shown = ['dhcp', 'tftp', 'script', 'kernel', 'kickstart', 'built', 'build-failed', 'discovered'].filter(
    (k) => activity.counts[k],
  );
  return (
    <span className="activity" data-testid="activity" title={`at ${new Date(activity.at).toLocaleTimeString()}`}>
      last {activity.seconds} s: {shown.map((k) => `${k} ${activity.counts[k]}`).join(' · ') || 'nothing'}
    </span>
  );
}

function CapEditor({
  site,
  cap,
  editable,
  onSaved,
}: {
  site: string;
  cap: number;
  editable: boolean;
  onSaved: () => void;
}) {
  const [value, setValue] = useState(String(cap));
  if (!editable) return <span title="at most this many hosts build at once">{cap}</span>;
  const parsed = Number(value);
  const valid = /^\d+$/.test(value) && parsed <= 100000;
  return (
    <span className="cap">
      <input
        aria-label={`build cap of ${site}`}
        className="narrow"
        value={value}
        onChange={(e) => setValue(e.target.value)}
        inputMode="numeric"
      />
      <ActionButton
        label="Set"
        disabled={!valid || parsed === cap}
        action={async () => (
          await api('PATCH', `/api/v1/sites/${enc(site)}`, { json: { buildCap: parsed } }),
          onSaved()
        )}
      />
    </span>
  );
}

interface Counts {
  readonly created: number;
  readonly updated: number;
}
interface SiteImportReply {
  readonly dryRun: boolean;
  readonly sites: Counts;
  readonly networks: Counts;
  readonly profiles: Counts;
}
interface HostsImportReply {
  readonly dryRun: boolean;
  readonly rows: number;
  readonly created: number;
  readonly updated: number;
}

function ImportPanel({ onImported }: { onImported: () => void }) {
  return (
    <Section title="Import">
      <div className="imports">
        <ImportBox
          label="Site YAML (sites, networks, profiles)"
          name="site-yaml"
          placeholder={
            'sites:\n  - name: site1\n    buildCap: 50\nnetworks:\n  - name: site1-hv0\n    site: site1\n    cidr: 10.1.0.0/22\n…'
          }
          submit={async (text, dryRun) => {
            const reply = await api<SiteImportReply>('POST', `/api/v1/import/site${dryRun ? '?dryRun=true' : ''}`, {
              text: { body: text, type: 'application/yaml' },
            });
            const verb = reply.dryRun ? 'would be ' : '';
            return (['sites', 'networks', 'profiles'] as const)
              .map((k) => `${k}: ${reply[k].created} ${verb}created, ${reply[k].updated} ${verb}updated`)
              .join('\n');
          }}
          onDone={onImported}
        />
        <ImportBox
          label="Hosts CSV (hostname,mac,ip,network,profile)"
          name="hosts-csv"
          placeholder={
            'hostname,mac,ip,network,profile\nhv0001.site1.example.com,52:54:00:00:00:01,10.1.0.20,site1-hv0,rhel9-kvm'
          }
          submit={async (text, dryRun) => {
            const reply = await api<HostsImportReply>(
              'POST',
              `/api/v1/import/hosts?mode=upsert${dryRun ? '&dryRun=true' : ''}`,
              { text: { body: text, type: 'text/csv' } },
            );
            return `${reply.rows} rows: ${reply.dryRun ? 'would create' : 'created'} ${reply.created}, ${reply.dryRun ? 'would update' : 'updated'} ${reply.updated}`;
          }}
          onDone={onImported}
        />
      </div>
    </Section>
  );
}

function ImportBox({
  label,
  name,
  placeholder,
  submit,
  onDone,
}: {
  label: string;
  name: string;
  placeholder: string;
  submit: (text: string, dryRun: boolean) => Promise<string>;
  onDone: () => void;
}) {
  const [text, setText] = useState('');
  const [result, setResult] = useState<string>();
  const [error, setError] = useState<string>();
  const run = (dryRun: boolean) => async () => {
    setResult(undefined);
    setError(undefined);
    try {
      setResult(await submit(text, dryRun));
      if (!dryRun) onDone();
    } catch (e) {
      setError(describe(e));
    }
  };
  return (
    <div className="import" data-import={name}>
      <label>
        {label}
        <input
          type="file"
          name={`${name}-file`}
          accept=".yaml,.yml,.csv,.txt,text/*"
          onChange={(e) => {
            const file = e.target.files?.[0];
            if (file) void file.text().then(setText);
          }}
        />
      </label>
      <textarea
        name={name}
        aria-label={label}
        rows={8}
        placeholder={placeholder}
        value={text}
        onChange={(e) => setText(e.target.value)}
        spellCheck={false}
      />
      <div className="buttons">
        <ActionButton label="Check" disabled={!text.trim()} action={run(true)} />
        <ActionButton label="Import" disabled={!text.trim()} action={run(false)} />
      </div>
      {result && <pre className="result">{result}</pre>}
      {error && (
        <pre className="error" role="alert">
          {error}
        </pre>
      )}
    </div>
  );
}
