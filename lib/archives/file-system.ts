import {
  closeSync, fchmodSync, fstatSync, futimesSync, linkSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync,
  rmdirSync, statSync, unlinkSync, utimesSync, writeFileSync
} from 'node:fs'
import type { Stats } from 'node:fs'
import { opendir, rm } from 'node:fs/promises'

/** What `FileArchive` does with a file it holds open: the part of a `node:fs/promises` `FileHandle` it calls. */
export interface FileArchiveHandle {
  readonly fd: number
  stat (): Promise<Stats>
  readFile (encoding: 'utf8'): Promise<string>
  writeFile (data: string): Promise<void>
  chmod (mode: number): Promise<void>
  utimes (atime: number, mtime: number): Promise<void>
  close (): Promise<void>
}

/**
 * The file system calls of `FileArchive`, as `node:fs/promises` has them:
 * that module itself is one, and so is `syncFileSystem`.
 */
export interface FileArchiveFs {
  link (existingPath: string, newPath: string): Promise<void>
  lstat (path: string): Promise<Stats>
  mkdir (path: string, options: { recursive?: boolean, mode: number }): Promise<string | undefined>
  open (path: string, flags: number, mode?: number): Promise<FileArchiveHandle>
  opendir (path: string, options: { bufferSize: number }): Promise<AsyncIterable<{ name: string }>>
  readdir (path: string): Promise<string[]>
  rename (oldPath: string, newPath: string): Promise<void>
  rm (path: string, options: { recursive: boolean, force: boolean }): Promise<void>
  rmdir (path: string): Promise<void>
  stat (path: string): Promise<Stats>
  unlink (path: string): Promise<void>
  utimes (path: string, atime: number, mtime: number): Promise<void>
  writeFile (path: string, data: string, options: { flag: string, mode: number }): Promise<void>
}

class SyncFileHandle implements FileArchiveHandle {
  readonly fd: number

  constructor (fd: number) {
    this.fd = fd
  }

  async stat (): Promise<Stats> {
    return fstatSync(this.fd)
  }

  async readFile (encoding: 'utf8'): Promise<string> {
    return readFileSync(this.fd, encoding)
  }

  async writeFile (data: string): Promise<void> {
    writeFileSync(this.fd, data)
  }

  async chmod (mode: number): Promise<void> {
    fchmodSync(this.fd, mode)
  }

  async utimes (atime: number, mtime: number): Promise<void> {
    futimesSync(this.fd, atime, mtime)
  }

  async close (): Promise<void> {
    closeSync(this.fd)
  }
}

/**
 * `FileArchive`'s default file system: the calls of a request, on the small
 * files of one session, made synchronously behind the promise API. On a local
 * disk each is a system call of a few microseconds, where a round trip through
 * libuv's thread pool costs tens of microseconds of CPU and wakes two threads.
 * The sweep's calls, which walk the whole directory, stay on the thread pool.
 */
export const syncFileSystem: FileArchiveFs = Object.freeze({
  link: async (existingPath: string, newPath: string) => linkSync(existingPath, newPath),
  lstat: async (path: string) => lstatSync(path),
  mkdir: async (path: string, options: { recursive?: boolean, mode: number }) => mkdirSync(path, options),
  open: async (path: string, flags: number, mode?: number) => new SyncFileHandle(openSync(path, flags, mode)),
  opendir,
  readdir: async (path: string) => readdirSync(path),
  rename: async (oldPath: string, newPath: string) => renameSync(oldPath, newPath),
  rm,
  rmdir: async (path: string) => rmdirSync(path),
  stat: async (path: string) => statSync(path),
  unlink: async (path: string) => unlinkSync(path),
  utimes: async (path: string, atime: number, mtime: number) => utimesSync(path, atime, mtime),
  writeFile: async (path: string, data: string, options: { flag: string, mode: number }) => writeFileSync(path, data, options)
})
