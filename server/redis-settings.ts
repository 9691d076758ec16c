/**
 * Login settings of a cluster (`maxInstancesPerPlatform`, `loginPolicy` per app), kept in
 * Redis under `<prefix>settings:<sdkAppId>`. They win over the config file, since they
 * outlive node restarts: the config only fills what Redis does not hold yet. Every login
 * reads them from Redis; each node also keeps them in its app objects (for
 * `get_login_settings` while Redis is away), refreshed by the `settings` notice.
 */
import { LOGIN_POLICIES, type AppConfig, type LoginPolicy } from './config.js';
import type { LoginSettings } from './engine.js';
import type { RedisLink } from './redis-health.js';
import type { RedisKeys } from './redis-keys.js';
import type { NodeChannel } from './redis-pubsub.js';

export class ClusterLoginSettings {
  constructor(
    private readonly link: RedisLink,
    private readonly keys: RedisKeys,
    private readonly apps: Map<number, AppConfig>,
    private readonly channel: NodeChannel,
  ) {}

  /** Write the config's settings where Redis holds none, and take Redis's into every app. */
  async load(): Promise<void> {
    const { cmd } = this.link;
    for (const app of this.apps.values()) {
      const key = this.keys.settings(app.sdkAppId);
      await cmd.hsetnx(key, 'max', String(app.maxInstancesPerPlatform));
      await cmd.hsetnx(key, 'policy', app.loginPolicy);
      this.apply(app, await cmd.hgetall(key));
    }
  }

  /** The app's settings as Redis holds them now (9030 when Redis is away). */
  async get(app: AppConfig): Promise<LoginSettings> {
    const raw = await this.link.call('settings', () => this.link.cmd.hgetall(this.keys.settings(app.sdkAppId)));
    return this.apply(app, raw);
  }

  /** Change the app's settings for the whole cluster. */
  async set(app: AppConfig, change: Partial<LoginSettings>): Promise<LoginSettings> {
    const fields: string[] = [];
    if (change.maxInstancesPerPlatform !== undefined) fields.push('max', String(change.maxInstancesPerPlatform));
    if (change.loginPolicy !== undefined) fields.push('policy', change.loginPolicy);
    const key = this.keys.settings(app.sdkAppId);
    const raw = await this.link.call('settings', async () => {
      if (fields.length > 0) await this.link.cmd.hset(key, ...fields);
      return this.link.cmd.hgetall(key);
    });
    const settings = this.apply(app, raw);
    // Every login reads the settings from Redis; the broadcast only refreshes the other
    // nodes' copies (get_login_settings while Redis is away, stats).
    this.channel.publishSettings(app.sdkAppId, settings);
    return settings;
  }

  /** Another node changed an app's settings. */
  received(sdkAppId: number, settings: { max: number; policy: LoginPolicy }): void {
    const app = this.apps.get(sdkAppId);
    if (app) this.apply(app, settings);
  }

  private apply(app: AppConfig, raw: { max?: string | number; policy?: string }): LoginSettings {
    const max = Number(raw.max);
    if (Number.isInteger(max) && max >= 1 && max <= 1000) app.maxInstancesPerPlatform = max;
    if ((LOGIN_POLICIES as readonly unknown[]).includes(raw.policy)) app.loginPolicy = raw.policy as LoginPolicy;
    return { maxInstancesPerPlatform: app.maxInstancesPerPlatform, loginPolicy: app.loginPolicy };
  }
}
