/** A FileArchive's lock holder files (`.<16 hex>.holder` in its dir), which live as long as the archive is open. */
export function isHolder (name: string): boolean {
  return /(?:^|\/)\.[0-9a-f]{16}\.holder$/.test(name)
}

/** Names or paths in an archive's dir, without its lock holder files. */
export function withoutHolders (names: string[]): string[] {
  return names.filter((name) => !isHolder(name))
}
