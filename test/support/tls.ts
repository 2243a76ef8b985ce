/**
 * Test PKI: a throw-away CA and a server certificate it signed, valid for 127.0.0.1 and localhost,
 * made with the openssl command line tool. Serve it with `startRegistry(auth, { tls: { cert, key } })`.
 *
 * File names keep the directory usable as a containers-certs.d folder (skopeo's `--cert-dir`,
 * microagent's `~/.microagent/certs.d/<host>/`): the CA is the only `*.crt`, and nothing is named
 * `*.cert` / `*.key`, which that convention would take for a client certificate.
 */
import { execFile } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { promisify } from "node:util"

export interface TestCa {
  /** PEM, the CA certificate clients trust: `<dir>/ca.crt` */
  readonly caCert: string
  /** PEM, the CA's private key: `<dir>/ca-key.pem` */
  readonly caKey: string
  /** PEM, server certificate for IP:127.0.0.1 and DNS:localhost: `<dir>/server-cert.pem` */
  readonly serverCert: string
  /** PEM, the server's private key: `<dir>/server-key.pem` */
  readonly serverKey: string
}

const run = promisify(execFile)

const DAYS = "2"

/** EC P-256 keys: as good as RSA for the test and generated in milliseconds. */
const EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

/** Creates `dir` if needed and writes a fresh CA and server certificate into it. */
export const makeCa = async (dir: string, options: { readonly commonName?: string } = {}): Promise<TestCa> => {
  await fs.mkdir(dir, { recursive: true })
  const files: TestCa = {
    caCert: path.join(dir, "ca.crt"),
    caKey: path.join(dir, "ca-key.pem"),
    serverCert: path.join(dir, "server-cert.pem"),
    serverKey: path.join(dir, "server-key.pem")
  }
  const csr = path.join(dir, "server.csr")
  const extensions = path.join(dir, "server-ext.cnf")
  const name = options.commonName ?? "microagent-test-ca"
  await run("openssl", [
    "req", "-x509", ...EC_KEY, "-keyout", files.caKey, "-out", files.caCert, "-days", DAYS,
    "-subj", `/CN=${name} ${randomBytes(4).toString("hex")}`,
    "-addext", "basicConstraints=critical,CA:TRUE",
    "-addext", "keyUsage=critical,keyCertSign,cRLSign"
  ])
  await run("openssl", ["req", "-new", ...EC_KEY, "-keyout", files.serverKey, "-out", csr, "-subj", "/CN=127.0.0.1"])
  await fs.writeFile(
    extensions,
    [
      "subjectAltName=IP:127.0.0.1,DNS:localhost",
      "basicConstraints=critical,CA:FALSE",
      "keyUsage=critical,digitalSignature,keyEncipherment",
      "extendedKeyUsage=serverAuth",
      ""
    ].join("\n")
  )
  await run("openssl", [
    "x509", "-req", "-in", csr, "-CA", files.caCert, "-CAkey", files.caKey,
    "-set_serial", `0x${randomBytes(8).toString("hex")}`, "-days", DAYS, "-extfile", extensions,
    "-out", files.serverCert
  ])
  await Promise.all([fs.rm(csr), fs.rm(extensions)])
  return files
}
