/**
 * `kvmfleet serve`: its flags are made from the one declaration of settings (serve-options.ts), and so are the
 * configuration file's keys. Precedence: flags > environment > configuration file > defaults.
 *   kvmfleet serve --config /etc/kvmfleet/kvmfleet.yaml --print-config   # what it would run with, secrets masked
 */
import { existsSync } from 'node:fs';
import { Command, Option } from 'commander';
import { stringify } from 'yaml';
import { VERSION } from '../version.ts';
import { DEFAULT_CONFIG_PATH, locateConfigFile, readConfigFile, type ConfigFile } from './config-file.ts';
import {
  envOf,
  flagOf,
  serveOptionsFrom,
  SETTING_NAMES,
  settingOf,
  type ServeSettings,
  type SettingName,
  type SettingValue,
} from './serve-options.ts';

export type Source = 'flag' | 'environment' | 'file' | 'default';

export interface Effective {
  readonly settings: ServeSettings;
  readonly sources: Record<SettingName, Source>;
  readonly file: ConfigFile | undefined;
}

/** One commander option per setting, with its environment variable and default (both shown by --help). */
export function settingOptions(): Option[] {
  return SETTING_NAMES.map((name) => {
    const setting = settingOf(name);
    const option = new Option(`--${flagOf(name)}${setting.arg ? ` ${setting.arg}` : ''}`, setting.help).env(
      envOf(name),
    );
    if (setting.default !== undefined) option.default(setting.default);
    if (setting.choices) option.choices(setting.choices);
    else if (setting.parse) option.argParser(setting.parse);
    return option;
  });
}

/** What serve runs with: a flag or variable commander saw wins, then the file, then the default. */
export function effectiveSettings(command: Command, file: ConfigFile | undefined): Effective {
  const given = command.opts<Record<string, SettingValue | undefined>>();
  const settings: Record<string, SettingValue | undefined> = {};
  const sources = {} as Record<SettingName, Source>;
  for (const name of SETTING_NAMES) {
    const source = command.getOptionValueSource(name);
    if (source === 'cli' || source === 'env') {
      settings[name] = given[name];
      sources[name] = source === 'cli' ? 'flag' : 'environment';
    } else if (file?.values[name] !== undefined) {
      settings[name] = file.values[name];
      sources[name] = 'file';
    } else {
      settings[name] = given[name];
      sources[name] = 'default';
    }
  }
  return { settings: settings as ServeSettings, sources, file };
}

/** The effective settings as a configuration file (secrets masked), each line saying where its value came from. */
export function formatEffective({ settings, sources, file }: Effective): string {
  const lines = [
    `# kvmfleet ${VERSION} serve, effective configuration: flags > environment > ${file ? file.path : 'no configuration file'} > defaults`,
  ];
  for (const name of SETTING_NAMES) {
    const value = maskedValue(name, settings[name]);
    const key = flagOf(name);
    if (value === undefined) lines.push(`# ${key}: (not set)`);
    else
      lines.push(
        `${key}: ${stringify(value).trimEnd()} # ${sources[name] === 'environment' ? `environment ${envOf(name)}` : sources[name]}`,
      );
  }
  return lines.join('\n');
}

/** The effective settings as JSON, by file key; null where a setting is not set. */
export function effectiveJson({ settings, sources, file }: Effective): {
  file: string | null;
  settings: Record<string, SettingValue | null>;
  sources: Record<string, Source>;
} {
  return {
    file: file?.path ?? null,
    settings: Object.fromEntries(
      SETTING_NAMES.map((name) => [flagOf(name), maskedValue(name, settings[name]) ?? null]),
    ),
    sources: Object.fromEntries(SETTING_NAMES.map((name) => [flagOf(name), sources[name]])),
  };
}

function maskedValue(name: SettingName, value: SettingValue | undefined): SettingValue | undefined {
  const mask = settingOf(name).mask as ((value: SettingValue) => string) | undefined;
  return value !== undefined && mask ? mask(value) : value;
}

export function registerServeCommand(program: Command, out: { json: () => boolean }): void {
  const command = program
    .command('serve')
    .description('run kvmfleet (default: every role in one process on the embedded store)');
  for (const option of settingOptions()) command.addOption(option);
  command
    .addOption(
      new Option('--config <file>', `settings file (YAML); default: ${DEFAULT_CONFIG_PATH} when it exists`).env(
        'KVMFLEET_CONFIG',
      ),
    )
    .addOption(new Option('--print-config', 'print the effective configuration (secrets masked) and exit'))
    .action(async (_options: unknown, self: Command) => {
      const { config, printConfig } = self.opts<{ config?: string; printConfig?: boolean }>();
      const located = locateConfigFile(config, existsSync);
      const effective = effectiveSettings(self, located ? readConfigFile(located.path) : undefined);
      const options = serveOptionsFrom(effective.settings); // also checks combinations (e.g. TLS files in pairs)
      if (printConfig) {
        console.log(out.json() ? JSON.stringify(effectiveJson(effective), null, 2) : formatEffective(effective));
        return;
      }
      const { serve } = await import('../serve.ts');
      // One connection's unhandled error must not stop every role; anything else exits for systemd to restart.
      (await import('../process-guard.ts')).installProcessGuard();
      if (effective.file) console.error(`kvmfleet: settings from ${effective.file.path}`);
      const running = await serve(options);
      const where = Object.entries(running.endpoints)
        .map(([role, url]) => `${role} ${url}`)
        .join(', ');
      console.error(
        `kvmfleet ${VERSION} serving ${where} (store: ${running.store.kind}${running.store.kind === 'embedded' ? ` in ${options.dataDir}` : ''})`,
      );
      const stop = async (signal: string) => {
        console.error(`kvmfleet: ${signal}, stopping`);
        // Roles get 10 s to finish what they hold; a stop that hangs (a request that never ends) must not keep the process.
        setTimeout(() => {
          console.error('kvmfleet: roles did not stop within 10 s, exiting');
          process.exit(1);
        }, 10_000).unref();
        await running.stop();
        process.exit(0);
      };
      process.once('SIGINT', () => void stop('SIGINT'));
      process.once('SIGTERM', () => void stop('SIGTERM'));
    });
}
