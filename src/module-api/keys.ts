// Typed keys: for the services modules provide to each other (ctx.provide / ctx.use) and for the
// data a module keeps on a session. A key is an object, so two modules cannot collide by name;
// the type travels with the key, so no caller casts what it gets back.

/** Names a service of type T that one module provides and others use. */
export interface ServiceKey<T> {
  readonly name: string;
  /** Carries T for the type checker only; never set. */
  readonly _service?: T;
}

export function serviceKey<T>(name: string): ServiceKey<T> {
  return { name };
}

/** Names a value of type T that a module keeps on a session. */
export interface SessionKey<T> {
  readonly name: string;
  /** Carries T for the type checker only; never set. */
  readonly _value?: T;
}

export function sessionKey<T>(name: string): SessionKey<T> {
  return { name };
}

/** Per-session module data, by typed key. */
export class SessionData {
  private readonly values = new Map<SessionKey<unknown>, unknown>();

  get<T>(key: SessionKey<T>): T | undefined {
    return this.values.get(key) as T | undefined;
  }

  set<T>(key: SessionKey<T>, value: T): void {
    this.values.set(key, value);
  }

  has(key: SessionKey<unknown>): boolean {
    return this.values.has(key);
  }

  delete(key: SessionKey<unknown>): void {
    this.values.delete(key);
  }
}
