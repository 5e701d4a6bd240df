import { FST_SESSION_UNSERIALIZABLE } from './errors.js'

/** A value as JSON can hold it. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json }

/** How deep a stored value may nest (objects, arrays, Maps, Sets and registered instances), counted from the value itself. */
export const MAX_DEPTH = 64

/**
 * A class whose instances a session may hold: `encode` turns an instance into
 * any value a session can store (itself encoded in turn, so it may hold
 * Dates, Maps or other registered instances), `decode` makes an instance
 * again from what `encode` returned. Instances match by exact class: an
 * instance of a subclass needs a registration of its own.
 *
 * @example
 * defineSessionType({
 *   name: 'Money',
 *   type: Money,
 *   encode: (money) => ({ cents: money.cents, currency: money.currency }),
 *   decode: (json) => new Money(json.cents, json.currency)
 * })
 */
export interface SessionType<T = unknown, J = unknown> {
  /** The name stored with each instance. Keep it stable: a stored name no registration claims makes the session unreadable. */
  readonly name: string
  /** The class; only its own instances match, not those of subclasses. */
  readonly type: abstract new (...args: never[]) => T
  /** The instance as a storable value: JSON, or any value this codec handles. */
  encode (value: T): J
  /** The instance again, from what `encode` returned. */
  decode (json: J): T
}

/**
 * Checks a registration's shape at compile time and infers its types from
 * `type` and `encode`; at run time it returns its argument.
 *
 * @example
 * const money = defineSessionType({
 *   name: 'Money',
 *   type: Money,
 *   encode: (money) => ({ cents: money.cents }),
 *   decode: (json) => new Money(json.cents)
 * })
 * app.register(fastifySessions, { secret, types: [money] })
 */
export function defineSessionType<T, J> (definition: SessionType<T, J>): SessionType<T, J> {
  return definition
}

/**
 * A stored value that this registration cannot revive: its type is not
 * registered (any more), its payload is malformed, the registered `decode`
 * threw, or it nests too deep. The session holding it is read as a fresh one.
 */
export class UnknownTypeError extends Error {
  /** The type name the stored value carries; `undefined` when the problem is not one type's. */
  readonly type: string | undefined

  constructor (type: string | undefined, problem: string, cause?: unknown) {
    super(`fastify-sessions: a stored value${type === undefined ? '' : ` of type "${type}"`} cannot be read: ${problem}`, { cause })
    this.name = 'UnknownTypeError'
    this.type = type
  }
}

// The stored forms. A value holding nothing but JSON is stored as it is. A
// value holding anything else is stored wrapped, `{ "~": tree }`, and in that
// tree every object with a "~" key is a tag, `{ "~": name, "v": payload }`:
// a plain object that has a "~" key of its own is stored as the tag
// `{ "~": "Object", "v": entries }`. A stored plain value never has a "~" key
// at its top, so telling the two apart costs one property lookup.
const TAG = '~'
const PAYLOAD = 'v'
// What `set()` stores nests at most MAX_DEPTH levels; only a forged value nests
// deeper, and reading it stops here rather than at the end of the stack.
const MAX_STORED_DEPTH = 2 * MAX_DEPTH

type Tag = { [TAG]: string, [PAYLOAD]: Json }

interface Encoder {
  readonly key: string
  readonly ancestors: object[]
  /** Whether anything was tagged, so the value must be stored wrapped. */
  tagged: boolean
}

/** Revives a payload still in its stored form; `child` revives what it holds. */
type Decode = (payload: Json, child: (json: Json) => unknown) => unknown

/** How the codec stores one type. */
interface Handler {
  readonly name: string
  readonly encode: (value: object, child: (value: unknown) => Json) => Json
  readonly decode: Decode
}

class Malformed extends Error {}

function list (payload: Json): Json[] {
  if (!Array.isArray(payload)) throw new Malformed('the payload is not a list')
  return payload
}

function text (payload: Json, pattern?: RegExp): string {
  if (typeof payload !== 'string' || (pattern !== undefined && !pattern.test(payload))) throw new Malformed('the payload is not the expected text')
  return payload
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/

function bytes (payload: Json, width: number): Buffer {
  const buffer = Buffer.from(text(payload, BASE64), 'base64')
  if (buffer.length % width !== 0) throw new Malformed(`${buffer.length} bytes are not a whole number of ${width}-byte elements`)
  return buffer
}

interface TypedArrayClass {
  readonly prototype: object
  readonly name: string
  readonly BYTES_PER_ELEMENT: number
  new (buffer: ArrayBuffer, byteOffset: number, length: number): ArrayBufferView
}

function typedArray (TypedArray: TypedArrayClass): [object, Handler] {
  return [TypedArray.prototype, {
    name: TypedArray.name,
    encode: (value) => {
      const view = value as ArrayBufferView
      return Buffer.from(view.buffer, view.byteOffset, view.byteLength).toString('base64')
    },
    decode: (payload) => {
      const buffer = bytes(payload, TypedArray.BYTES_PER_ELEMENT)
      // A copy on a buffer of its own, aligned for any element width.
      const copy = new ArrayBuffer(buffer.length)
      new Uint8Array(copy).set(buffer)
      return new TypedArray(copy, 0, buffer.length / TypedArray.BYTES_PER_ELEMENT)
    }
  }]
}

/** The types every registration stores, by prototype: only these and the registered ones are ever revived. */
const BUILT_IN = new Map<object, Handler>([
  [Date.prototype, {
    name: 'Date',
    encode: (value) => {
      const time = (value as Date).getTime()
      return Number.isNaN(time) ? null : time
    },
    decode: (payload) => {
      if (payload !== null && typeof payload !== 'number') throw new Malformed('the payload is not a time')
      return new Date(payload ?? Number.NaN)
    }
  }],
  [Map.prototype, {
    name: 'Map',
    encode: (value, child) => {
      const pairs: Json[] = []
      for (const [key, item] of value as Map<unknown, unknown>) pairs.push([child(key ?? null), child(item ?? null)])
      return pairs
    },
    decode: (payload, child) => new Map(list(payload).map((pair) => {
      const entry = list(pair)
      if (entry.length !== 2) throw new Malformed('a Map entry is not a pair')
      return [child(entry[0] as Json), child(entry[1] as Json)]
    }))
  }],
  [Set.prototype, {
    name: 'Set',
    encode: (value, child) => Array.from(value as Set<unknown>, (item) => child(item ?? null)),
    decode: (payload, child) => new Set(list(payload).map(child))
  }],
  [URL.prototype, {
    name: 'URL',
    encode: (value) => (value as URL).href,
    decode: (payload) => {
      const href = text(payload)
      if (!URL.canParse(href)) throw new Malformed('the payload is not a URL')
      return new URL(href)
    }
  }],
  [Buffer.prototype, {
    name: 'Buffer',
    encode: (value) => (value as Buffer).toString('base64'),
    decode: (payload) => bytes(payload, 1)
  }],
  ...[
    Uint8Array, Uint8ClampedArray, Uint16Array, Uint32Array, Int8Array, Int16Array, Int32Array,
    Float32Array, Float64Array, BigUint64Array, BigInt64Array
  ].map(typedArray)
])

// Bigints are primitives: encoded by `typeof`, never looked up by prototype.
const BIGINT = 'BigInt'
const decodeBigInt: Decode = (payload) => BigInt(text(payload, /^-?\d+$/))

const ESCAPED_OBJECT = 'Object'

/** Names a registered type may not take: the built-in ones. */
export const BUILT_IN_NAMES: ReadonlySet<string> = new Set([ESCAPED_OBJECT, BIGINT, ...Array.from(BUILT_IN.values(), (handler) => handler.name)])

/** Classes a registered type may not be: plain objects, arrays and the built-in types. */
export function isBuiltInType (type: { prototype?: unknown }): boolean {
  return type.prototype === Object.prototype || type.prototype === Array.prototype || BUILT_IN.has(type.prototype as object)
}

/** Turns session values into JSON forms and back; one per plugin registration. */
export class Codec {
  readonly #byPrototype: Map<object, Handler>
  readonly #byName: Map<string, Decode>

  /** `types` must have been checked: unique names and classes, none of them built in. */
  constructor (types: readonly SessionType[] = []) {
    this.#byPrototype = new Map(BUILT_IN)
    for (const type of types) {
      this.#byPrototype.set(type.type.prototype as object, {
        name: type.name,
        encode: (value, child) => child(type.encode(value as never)),
        decode: (payload, child) => type.decode(child(payload))
      })
    }
    this.#byName = new Map([[BIGINT, decodeBigInt], ...Array.from(this.#byPrototype.values(), ({ name, decode }): [string, Decode] => [name, decode])])
  }

  /**
   * Turns a session value into its JSON form, checking it on the way: the copy is
   * taken at `set()`, so a value that cannot be stored fails there, naming its
   * key, and never later at save time.
   */
  toJson (value: unknown, key: string): Json {
    const encoder: Encoder = { key, ancestors: [], tagged: false }
    const json = this.#encode(value, encoder)
    return encoder.tagged ? { [TAG]: json } : json
  }

  /**
   * Turns a stored JSON form back into the value `set()` was given. Throws
   * `UnknownTypeError`, and nothing else, when the form holds a value this
   * codec cannot revive.
   */
  fromJson (json: Json): unknown {
    // The lookup misses, at the cost of a property read, on every plain value; only a hit pays for hasOwn.
    const tree = typeof json === 'object' && json !== null ? (json as Record<string, Json | undefined>)[TAG] : undefined
    if (tree === undefined || !Object.hasOwn(json as object, TAG)) return json
    return this.#decode(tree, 1)
  }

  #encode (value: unknown, encoder: Encoder): Json {
    switch (typeof value) {
      case 'string':
      case 'boolean':
        return value
      case 'number':
        if (Number.isFinite(value)) return value
        throw new FST_SESSION_UNSERIALIZABLE(encoder.key, `${value} is not a finite number`)
      case 'bigint':
        encoder.tagged = true
        return { [TAG]: BIGINT, [PAYLOAD]: value.toString() }
      case 'object':
        if (value === null) return null
        return this.#encodeObject(value, encoder)
      default:
        throw new FST_SESSION_UNSERIALIZABLE(encoder.key, `a ${typeof value} cannot be stored`)
    }
  }

  #encodeObject (value: object, encoder: Encoder): Json {
    const { key, ancestors } = encoder
    if (ancestors.includes(value)) throw new FST_SESSION_UNSERIALIZABLE(key, 'the value contains a cycle')
    if (ancestors.length >= MAX_DEPTH) throw new FST_SESSION_UNSERIALIZABLE(key, `the value nests deeper than ${MAX_DEPTH} levels`)
    ancestors.push(value)
    let out: Json
    if (Array.isArray(value)) {
      out = new Array<Json>(value.length)
      for (let i = 0; i < value.length; i++) out[i] = value[i] === undefined ? null : this.#encode(value[i], encoder)
    } else {
      const proto = Object.getPrototypeOf(value)
      if (proto === Object.prototype || proto === null) {
        // An ordinary object, which V8 keeps in its fast form (a prototype-less
        // one it keeps as a dictionary, slower to serialise and to walk); a
        // "__proto__" key is defined, so that it stays an ordinary key.
        const copy: Record<string, Json> = {}
        for (const name of Object.keys(value)) {
          const item = (value as Record<string, unknown>)[name]
          if (item === undefined) continue
          if (name === '__proto__') Object.defineProperty(copy, name, { value: this.#encode(item, encoder), writable: true, enumerable: true, configurable: true })
          else copy[name] = this.#encode(item, encoder)
        }
        if (Object.hasOwn(copy, TAG)) {
          encoder.tagged = true
          out = { [TAG]: ESCAPED_OBJECT, [PAYLOAD]: copy }
        } else {
          out = copy
        }
      } else {
        out = this.#encodeTyped(value, proto as object, encoder)
      }
    }
    ancestors.pop()
    return out
  }

  #encodeTyped (value: object, proto: object, encoder: Encoder): Tag {
    const handler = this.#byPrototype.get(proto)
    if (handler === undefined) {
      throw new FST_SESSION_UNSERIALIZABLE(encoder.key, `an instance of ${describe(value)} is not plain data; register its class in the \`types\` option`)
    }
    encoder.tagged = true
    let payload: Json
    try {
      payload = handler.encode(value, (item) => this.#encode(item, encoder))
    } catch (error) {
      if (error instanceof FST_SESSION_UNSERIALIZABLE) throw error
      const failure = new FST_SESSION_UNSERIALIZABLE(encoder.key, `encoding a ${handler.name} failed`)
      failure.cause = error
      throw failure
    }
    return { [TAG]: handler.name, [PAYLOAD]: payload }
  }

  #decode (json: Json, depth: number): unknown {
    if (typeof json !== 'object' || json === null) return json
    if (depth > MAX_STORED_DEPTH) throw new UnknownTypeError(undefined, `it nests deeper than ${MAX_STORED_DEPTH} levels`)
    if (Array.isArray(json)) return json.map((item) => this.#decode(item, depth + 1))
    if (!Object.hasOwn(json, TAG)) return this.#decodeEntries(json, depth)
    const name = json[TAG]
    if (typeof name !== 'string') throw new UnknownTypeError(String(name), 'the tag is not a type name')
    const payload = json[PAYLOAD] ?? null
    if (name === ESCAPED_OBJECT) {
      if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) throw new UnknownTypeError(name, 'the payload is not an object')
      return this.#decodeEntries(payload, depth)
    }
    const decode = this.#byName.get(name)
    if (decode === undefined) throw new UnknownTypeError(name, 'no type of this name is registered')
    try {
      return decode(payload, (item) => this.#decode(item, depth + 1))
    } catch (error) {
      if (error instanceof UnknownTypeError) throw error
      throw new UnknownTypeError(name, error instanceof Malformed ? error.message : 'its decode threw', error)
    }
  }

  /** A plain object, as `JSON.parse` makes it: a "__proto__" key is an own property, never the prototype. */
  #decodeEntries (json: { [key: string]: Json }, depth: number): Record<string, unknown> {
    const out: Record<string, unknown> = {}
    for (const name of Object.keys(json)) {
      const item = this.#decode(json[name] as Json, depth + 1)
      if (name === '__proto__') Object.defineProperty(out, name, { value: item, writable: true, enumerable: true, configurable: true })
      else out[name] = item
    }
    return out
  }
}

/**
 * Whether `value` is plain data (plain objects, arrays, strings, finite numbers,
 * booleans, null) that the codec would store as exactly `json`, keys in the
 * same order: the same text, found without encoding it. False for anything
 * else, tagged values included, where only encoding it again can tell.
 */
export function encodesTo (value: unknown, json: Json): boolean {
  // The stored form never holds a non-finite number, so equality settles every primitive.
  if (typeof value !== 'object' || value === null) return value === json
  if (typeof json !== 'object' || json === null) return false
  if (Array.isArray(value)) {
    if (!Array.isArray(json) || json.length !== value.length) return false
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i]
      if (item === undefined ? json[i] !== null : !encodesTo(item, json[i] as Json)) return false
    }
    return true
  }
  if (Array.isArray(json)) return false
  const proto = Object.getPrototypeOf(value)
  if (proto !== Object.prototype && proto !== null) return false
  const names = Object.keys(json)
  let at = 0
  for (const name of Object.keys(value)) {
    const item = (value as Record<string, unknown>)[name]
    if (item === undefined) continue
    if (name === TAG || name !== names[at] || !encodesTo(item, json[name] as Json)) return false
    at++
  }
  return at === names.length
}

/** A copy of a JSON value (as `JSON.parse` makes one), in ordinary objects: a "__proto__" key stays an ordinary key. */
export function copyJson (json: Json): Json {
  if (typeof json !== 'object' || json === null) return json
  if (Array.isArray(json)) return json.map(copyJson)
  const copy: Record<string, Json> = {}
  for (const name of Object.keys(json)) {
    const item = copyJson(json[name] as Json)
    if (name === '__proto__') Object.defineProperty(copy, name, { value: item, writable: true, enumerable: true, configurable: true })
    else copy[name] = item
  }
  return copy
}

function describe (value: object): string {
  const name = (value.constructor as { name?: unknown } | undefined)?.name
  return typeof name === 'string' && name !== '' ? name : 'an anonymous class'
}
