/**
 * The hub's session engines, one per chat server URL, so ONE WebSocket per server for every
 * tab of the browser profile: created on a server's first login, told about the host's
 * network (`online` / `offline`), and closed together when the last tab leaves. Their net
 * state changes go to the hub, which announces them to the tabs.
 */
import type { NetState } from '../src/protocol/data.js';
import type { Snapshot } from '../src/protocol/hub-protocol.js';
import type { SessionEngineApi } from '../src/core/types.js';

/**
 * What the hub needs from a session engine: a part of src/core's {@link SessionEngineApi}
 * (`SessionEngine` fits), plus the browser `online` / `offline` switch
 * (`SessionEngine.setOnline`, optional for test doubles).
 */
export type HubEngine = Pick<SessionEngineApi, 'login' | 'resume' | 'logout' | 'send' | 'conversation' | 'getServerTime' | 'netState' | 'onNetState' | 'close'> & {
  setOnline?(online: boolean): void;
};

interface EngineRecord {
  engine: HubEngine;
  stopNet: () => void;
}

/** The engines of one hub, by server URL. */
export class HubEngines {
  private readonly engines = new Map<string, EngineRecord>();
  /** Last `online` / `offline` of the host (see {@link setOnline}). */
  private online = true;

  /**
   * @param create - a new engine for a server URL
   * @param onNet - an engine's net state changed
   */
  constructor(
    private readonly create: (server: string) => HubEngine,
    private readonly onNet: (server: string, state: NetState) => void,
  ) {}

  get size(): number {
    return this.engines.size;
  }

  /** The engine of `server`, if it runs. */
  find(server: string): HubEngine | undefined {
    return this.engines.get(server)?.engine;
  }

  /** The engine of `server`, started on first use (offline from the start if the host is). */
  ensure(server: string): HubEngine {
    let record = this.engines.get(server);
    if (!record) {
      const engine = this.create(server);
      if (!this.online) engine.setOnline?.(false);
      const stopNet = engine.onNetState((state) => this.onNet(server, state));
      record = { engine, stopNet };
      this.engines.set(server, record);
    }
    return record.engine;
  }

  /** The host's network came back (`online`) or went away (`offline`): tell every engine, and those started later. */
  setOnline(online: boolean): void {
    this.online = online;
    for (const record of this.engines.values()) record.engine.setOnline?.(online);
  }

  /** Close every engine: sockets closed, instances forgotten without a word to the server. */
  closeAll(): void {
    for (const record of this.engines.values()) {
      record.stopNet();
      record.engine.close();
    }
    this.engines.clear();
  }

  /** Per server: the socket's net state and the server clock, for a snapshot. */
  states(): Snapshot['servers'] {
    const servers: Snapshot['servers'] = {};
    for (const [server, record] of this.engines) {
      servers[server] = { net: record.engine.netState, serverTime: record.engine.getServerTime() };
    }
    return servers;
  }
}
