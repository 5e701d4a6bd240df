/** Spaces and tabs, the whitespace a `Cookie` header may hold around names and values. */
function trim (text: string, start: number, end: number): string {
  while (start < end && (text.charCodeAt(start) === 32 || text.charCodeAt(start) === 9)) start++
  while (end > start && (text.charCodeAt(end - 1) === 32 || text.charCodeAt(end - 1) === 9)) end--
  return text.slice(start, end)
}

/**
 * The value of one cookie in a `Cookie` header, found without parsing the
 * others, read exactly as the `cookie` package that `@fastify/cookie` uses
 * reads it: the first pair of that name wins, spaces and tabs around names
 * and values are dropped, and %-escapes are decoded when they are valid.
 */
export function findCookie (header: string, name: string): string | undefined {
  const length = header.length
  let start = 0
  while (start < length) {
    let end = header.indexOf(';', start)
    if (end === -1) end = length
    const equals = header.indexOf('=', start)
    if (equals === -1) return undefined
    if (equals < end && trim(header, start, equals) === name) {
      const value = trim(header, equals + 1, end)
      if (!value.includes('%')) return value
      try {
        return decodeURIComponent(value)
      } catch {
        return value
      }
    }
    start = end + 1
  }
  return undefined
}
