/**
 * Kickstart files rendered from Handlebars templates. A profile names its template; operators may
 * add or override templates in <data-dir>/templates/kickstart/NAME.ks.hbs. Rendering is strict:
 * a template that names a variable that does not exist is an error, not an empty string.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Handlebars from 'handlebars';
import { ErrorCode, KvmfleetError } from '../errors.ts';
import { formatIpv4, maskOf, parseCidr } from '../protocols/ipv4.ts';
import { hasControlCharacter } from '../fleet/kickstart-inputs.ts';
import type { Host, Network, Profile, Site } from '../fleet/model.ts';
import { VERSION } from '../version.ts';

export const BUILTIN_TEMPLATE_DIR = fileURLToPath(new URL('../../templates/kickstart', import.meta.url));

export interface KickstartContext {
  host: { hostname: string; fqdn: string; shortname: string; ip: string | null; mac: string; macs: readonly string[] };
  network: {
    name: string;
    cidr: string;
    netmask: string;
    prefix: number;
    gateway: string | null;
    dns: readonly string[];
    domain: string;
  };
  site: { name: string };
  profile: {
    name: string;
    os: string;
    osVersion: string;
    installTreeUrl: string;
    packages: readonly string[];
    kernelArgs: string;
    rootPasswordHash: string;
  };
  urls: { built: string; kickstart: string };
  kvmfleet: { version: string };
}

export function kickstartContext(input: {
  host: Pick<Host, 'hostname' | 'ip' | 'macs'>;
  network: Pick<Network, 'name' | 'cidr' | 'gateway' | 'dns' | 'domain'>;
  site: Pick<Site, 'name'>;
  profile: Pick<Profile, 'name' | 'os' | 'installTreeUrl' | 'packages' | 'kernelArgs'>;
  rootPasswordHash: string;
  urls: { built: string; kickstart: string };
}): KickstartContext {
  const { host, network, profile } = input;
  const cidr = parseCidr(network.cidr);
  if (!cidr) throw new KvmfleetError(ErrorCode.Validation, `network ${network.name} has a bad CIDR`);
  const fqdn = host.hostname.includes('.') || !network.domain ? host.hostname : `${host.hostname}.${network.domain}`;
  return {
    host: {
      hostname: host.hostname,
      fqdn,
      shortname: fqdn.split('.')[0]!,
      ip: host.ip,
      mac: host.macs[0] ?? '',
      macs: host.macs,
    },
    network: {
      name: network.name,
      cidr: network.cidr,
      netmask: formatIpv4(maskOf(cidr.prefix)),
      prefix: cidr.prefix,
      gateway: network.gateway,
      dns: network.dns,
      domain: network.domain,
    },
    site: { name: input.site.name },
    profile: {
      name: profile.name,
      os: profile.os,
      osVersion: profile.os.replace(/^rhel/, ''),
      installTreeUrl: profile.installTreeUrl,
      packages: profile.packages,
      kernelArgs: profile.kernelArgs,
      rootPasswordHash: input.rootPasswordHash,
    },
    urls: input.urls,
    kvmfleet: { version: VERSION },
  };
}

/**
 * Templates render with noEscape (a Kickstart is not HTML), so a value is trusted to stay on its
 * line: any value with a newline or another control character is refused here, wherever it came
 * from (the API and imports refuse them too; this also covers rows written before they did).
 */
export function assertSafeContext(value: unknown, path = 'context'): void {
  if (typeof value === 'string') {
    if (hasControlCharacter(value))
      throw new KvmfleetError(
        ErrorCode.ControlCharacter,
        `Kickstart value ${path} contains a newline or another control character: refused`,
      );
  } else if (Array.isArray(value)) {
    value.forEach((item, i) => assertSafeContext(item, `${path}[${i}]`));
  } else if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) assertSafeContext(item, `${path}.${key}`);
  }
}

const handlebars = Handlebars.create();
handlebars.registerHelper('join', (list: unknown, separator: unknown) =>
  Array.isArray(list) ? list.join(typeof separator === 'string' ? separator : ',') : '',
);

const CHECK_MS = 1000;

export class KickstartTemplates {
  readonly #dirs: string[];
  readonly #compiled = new Map<string, { mtimeMs: number; render: HandlebarsTemplateDelegate }>();
  /** Where each name resolved and when (ms): the files are looked at again at most every CHECK_MS. */
  readonly #resolved = new Map<string, { path: string | undefined; checkedAt: number }>();

  /** @param operatorDir templates here win over the built-in ones of the same name. */
  constructor(operatorDir?: string) {
    this.#dirs = [...(operatorDir ? [operatorDir] : []), BUILTIN_TEMPLATE_DIR];
  }

  render(name: string, context: KickstartContext): string {
    if (!/^[a-z0-9][a-z0-9._-]{0,62}$/.test(name))
      throw new KvmfleetError(ErrorCode.Validation, `bad Kickstart template name "${name}"`);
    const path = this.#resolve(name);
    if (!path)
      throw new KvmfleetError(ErrorCode.NotFound, `Kickstart template "${name}" not found in ${this.#dirs.join(', ')}`);
    assertSafeContext(context);
    try {
      return this.#template(path)(context);
    } catch (error) {
      if (error instanceof KvmfleetError) throw error;
      throw new KvmfleetError(ErrorCode.Validation, `Kickstart template "${name}" failed: ${(error as Error).message}`);
    }
  }

  /**
   * The file a name renders from, looked up on disk at most every CHECK_MS (a storm renders many
   * Kickstarts a second; an operator's edit is seen within a second). A template that failed to
   * compile is not cached, so it is read again on the next render.
   */
  #resolve(name: string): string | undefined {
    const now = Date.now();
    const seen = this.#resolved.get(name);
    if (seen && now - seen.checkedAt < CHECK_MS && (seen.path === undefined || this.#compiled.has(seen.path)))
      return seen.path;
    const path = this.#dirs.map((dir) => join(dir, `${name}.ks.hbs`)).find((p) => existsSync(p));
    // A changed file is compiled again below: its cached entry is dropped when its mtime differs.
    if (path) {
      const cached = this.#compiled.get(path);
      if (cached && statSync(path).mtimeMs !== cached.mtimeMs) this.#compiled.delete(path);
    }
    this.#resolved.set(name, { path, checkedAt: now });
    return path;
  }

  #template(path: string): HandlebarsTemplateDelegate {
    const cached = this.#compiled.get(path);
    if (cached) return cached.render;
    const mtimeMs = statSync(path).mtimeMs;
    const render = handlebars.compile(readFileSync(path, 'utf8'), { strict: true, noEscape: true });
    this.#compiled.set(path, { mtimeMs, render });
    return render;
  }
}
