// The AWS SDK for JavaScript v3 as a client of object-storage-proxy, driven
// by tests/test_clients_js.py: `node s3client.mjs SCENARIO` with OSP_PARAMS
// (JSON: endpoint, bucket, access_key, secret_key, and what the scenario
// needs) in the environment, run in a directory holding the scenario's
// files. It prints one line `OSP-RESULT {json}` with what the scenario saw
// and every request the SDK sent (headers after signing), and exits 0; a
// scenario that throws exits 1 with the error on stderr.
//
// The client keeps the SDK's defaults (CRC32 request checksums "when
// supported", response checksum validation, aws-chunked streams, lib-storage
// part size and queue size) except path-style addressing and one attempt per
// request, so that a failure is seen rather than retried away. HTTPS trusts
// the tests' self-signed certificate through NODE_EXTRA_CA_CERTS, which
// covers the SDK and fetch alike.

import { createHash } from "node:crypto";
import { createReadStream, readFileSync } from "node:fs";
import { Readable } from "node:stream";

import {
  CopyObjectCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  PutObjectTaggingCommand,
  S3Client,
  paginateListObjectsV2,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";

const P = JSON.parse(process.env.OSP_PARAMS);
const MIB = 1024 * 1024;

// Every request the SDK sent, as signed; and the most UploadPart requests
// that were in flight at once.
const SENT = [];
let inFlightParts = 0;
let maxInFlightParts = 0;

function makeClient(secretKey = P.secret_key, options = {}) {
  const client = new S3Client({
    endpoint: P.endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: P.access_key, secretAccessKey: secretKey },
    maxAttempts: 1,
    ...options,
  });
  // In the deserialize step the request is final: checksums added, signed.
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const req = args.request;
      const headers = {};
      for (const [name, value] of Object.entries(req.headers ?? {})) {
        headers[name.toLowerCase()] = String(value);
      }
      const signed = /SignedHeaders=([^,]+)/.exec(headers.authorization ?? "");
      const signedSet = new Set(signed ? signed[1].split(";") : []);
      SENT.push({
        op: context.commandName,
        method: req.method,
        path: req.path,
        query: req.query ?? {},
        headers: Object.fromEntries(Object.entries(headers).filter(([n]) => n !== "authorization")),
        unsigned: Object.keys(headers).filter((n) => n !== "authorization" && !signedSet.has(n)).sort(),
      });
      const isPart = context.commandName === "UploadPartCommand";
      if (isPart) {
        inFlightParts += 1;
        maxInFlightParts = Math.max(maxInFlightParts, inFlightParts);
      }
      try {
        return await next(args);
      } finally {
        if (isPart) inFlightParts -= 1;
      }
    },
    { step: "deserialize", priority: "low", name: "ospRecordSent" },
  );
  return client;
}

const s3 = makeClient();
const bucket = P.bucket;

function sha256(bytes) {
  return createHash("sha256").update(bytes).digest("hex");
}

async function bodyBytes(response) {
  return Buffer.from(await response.Body.transformToByteArray());
}

// A stream whose length the SDK cannot know: generated in 64 KiB pieces
// from a file's bytes, no path, no length.
function unknownLengthStream(bytes) {
  async function* pieces() {
    for (let i = 0; i < bytes.length; i += 64 * 1024) {
      yield bytes.subarray(i, Math.min(i + 64 * 1024, bytes.length));
    }
  }
  return Readable.from(pieces(), { objectMode: false });
}

function errorOf(e) {
  return {
    name: e.name,
    code: e.Code ?? e.name,
    status: e.$metadata?.httpStatusCode,
    message: e.message,
  };
}

// S3 copy sources are URL-encoded by the caller: each key segment with
// encodeURIComponent, as the SDK's documentation asks.
function copySource(key) {
  return `${bucket}/${key.split("/").map(encodeURIComponent).join("/")}`;
}

const scenarios = {
  // PutObject of a Buffer with metadata; GetObject whole and ranged;
  // HeadObject; ListObjectsV2 paged two keys at a time.
  async basic() {
    const body = readFileSync("small.bin");
    const put = await s3.send(
      new PutObjectCommand({ Bucket: bucket, Key: "dir/small.bin", Body: body, Metadata: { origin: "js-sdk-v3", "two-words": "a  b" } }),
    );
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: "dir/small.bin" }));
    const whole = await bodyBytes(got);
    const ranged = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: "dir/small.bin", Range: "bytes=1000-2999" }));
    const rangedBytes = await bodyBytes(ranged);
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: "dir/small.bin" }));
    for (let i = 0; i < 4; i++) {
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `dir/page-${i}.txt`, Body: `page ${i}` }));
    }
    const pages = [];
    for await (const page of paginateListObjectsV2({ client: s3, pageSize: 2 }, { Bucket: bucket, Prefix: "dir/" })) {
      pages.push((page.Contents ?? []).map((o) => o.Key));
    }
    return {
      put_crc32: put.ChecksumCRC32 ?? null,
      // The SDK asked for it (x-amz-checksum-mode) and checked it against
      // the body it read.
      get_crc32: got.ChecksumCRC32 ?? null,
      whole_sha256: sha256(whole),
      whole_len: whole.length,
      ranged_sha256: sha256(rangedBytes),
      ranged_len: rangedBytes.length,
      content_range: ranged.ContentRange ?? null,
      head_len: head.ContentLength,
      metadata: head.Metadata,
      pages,
    };
  },

  // PutObject of a file stream (the SDK learns its length from the file).
  async put_file_stream() {
    const put = await s3.send(
      new PutObjectCommand({ Bucket: bucket, Key: "streamed.bin", Body: createReadStream("streamed.bin") }),
    );
    return { put_crc32: put.ChecksumCRC32 ?? null };
  },

  // lib-storage Upload of streams of unknown length, with its defaults
  // (5 MiB parts, 4 in flight): one below a part (a single PutObject), one
  // of several parts (multipart, concurrent).
  async upload_streams() {
    const small = readFileSync("small-stream.bin");
    const big = readFileSync("big-stream.bin");
    await new Upload({ client: s3, params: { Bucket: bucket, Key: "small-stream.bin", Body: unknownLengthStream(small) } }).done();
    const upload = new Upload({ client: s3, params: { Bucket: bucket, Key: "big-stream.bin", Body: unknownLengthStream(big) } });
    const parts = [];
    upload.on("httpUploadProgress", (p) => parts.push(p.part));
    const done = await upload.done();
    const back = await bodyBytes(await s3.send(new GetObjectCommand({ Bucket: bucket, Key: "big-stream.bin" })));
    return { etag: done.ETag, max_in_flight_parts: maxInFlightParts, back_sha256: sha256(back), back_len: back.length };
  },

  // CopyObject within the bucket between keys with spaces, '+' and UTF-8.
  async copy() {
    const body = readFileSync("src.bin");
    const copied = {};
    for (const [src, dst] of P.pairs) {
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: src, Body: body }));
      await s3.send(new CopyObjectCommand({ Bucket: bucket, Key: dst, CopySource: copySource(src) }));
      const back = await bodyBytes(await s3.send(new GetObjectCommand({ Bucket: bucket, Key: dst })));
      copied[dst] = sha256(back);
    }
    // Copy sources written unencoded, as in the SDK's own examples
    // (`${bucket}/${key}`): fine for ASCII keys with spaces and '+'.
    for (const [src, dst] of P.raw_pairs ?? []) {
      await s3.send(new CopyObjectCommand({ Bucket: bucket, Key: dst, CopySource: `${bucket}/${src}` }));
      copied[dst] = sha256(await bodyBytes(await s3.send(new GetObjectCommand({ Bucket: bucket, Key: dst }))));
    }
    return { copied };
  },

  // DeleteObjects (the SDK adds a CRC32 of the body: the operation requires
  // a checksum) of keys that exist and one that does not.
  async delete_objects() {
    const out = await s3.send(
      new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: P.keys.map((Key) => ({ Key })) } }),
    );
    return {
      deleted: (out.Deleted ?? []).map((d) => d.Key).sort(),
      errors: (out.Errors ?? []).map((e) => ({ key: e.Key, code: e.Code })),
    };
  },

  // Presigned GET and PUT URLs, fetched with Node's fetch and no headers.
  async presign() {
    const getUrl = await getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: "get.bin" }), { expiresIn: 300 });
    const putUrl = await getSignedUrl(s3, new PutObjectCommand({ Bucket: bucket, Key: "put.bin" }), { expiresIn: 300 });
    const got = await fetch(getUrl);
    const gotBytes = Buffer.from(await got.arrayBuffer());
    // A browser or player adds Range (unsigned, on the proxy's allowlist).
    const ranged = await fetch(getUrl, { headers: { Range: "bytes=10-19" } });
    const rangedBytes = Buffer.from(await ranged.arrayBuffer());
    const put = await fetch(putUrl, { method: "PUT", body: readFileSync("put.bin") });
    // The SDK's default presigned PutObject URL signs the CRC32 of the empty
    // body it had (x-amz-checksum-crc32=AAAAAA==); S3 then refuses any other
    // body. Its documented way out: checksums only when required.
    const whenRequired = makeClient(P.secret_key, { requestChecksumCalculation: "WHEN_REQUIRED" });
    const put2Url = await getSignedUrl(whenRequired, new PutObjectCommand({ Bucket: bucket, Key: "put-when-required.bin" }), { expiresIn: 300 });
    const put2 = await fetch(put2Url, { method: "PUT", body: readFileSync("put.bin") });
    return {
      get_url: getUrl,
      put_url: putUrl,
      put_when_required_url: put2Url,
      put_when_required_status: put2.status,
      put_when_required_body: await put2.text(),
      get_status: got.status,
      get_sha256: sha256(gotBytes),
      ranged_status: ranged.status,
      ranged_sha256: sha256(rangedBytes),
      put_status: put.status,
      put_body: await put.text(),
    };
  },

  // Requests whose every header the test compares with what a recording
  // backend behind the proxy received: signed metadata, tagging and
  // content headers, an aws-chunked stream, a ranged read, DeleteObjects,
  // and a presigned PUT sent by fetch with an unsigned Content-Type.
  async wire() {
    const body = readFileSync("small.bin");
    const answers = {};
    const attempt = async (name, fn) => {
      try {
        await fn();
        answers[name] = "ok";
      } catch (e) {
        answers[name] = errorOf(e);
      }
    };
    await attempt("put", () =>
      s3.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: "dir/with space+plus/é.bin",
          Body: body,
          Metadata: { origin: "js-sdk-v3" },
          Tagging: "team=a&tier=b",
          ContentType: "application/x-osp",
          ContentDisposition: 'attachment; filename="x.bin"',
          CacheControl: "max-age=60",
        }),
      ),
    );
    await attempt("put_stream", () =>
      s3.send(new PutObjectCommand({ Bucket: bucket, Key: "streamed.bin", Body: createReadStream("small.bin") })),
    );
    await attempt("get_range", async () => {
      const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: "streamed.bin", Range: "bytes=0-9" }));
      await got.Body.transformToByteArray();
    });
    await attempt("delete_objects", () =>
      s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: [{ Key: "a" }, { Key: "b c" }] } })),
    );
    const putUrl = await getSignedUrl(s3, new PutObjectCommand({ Bucket: bucket, Key: "presigned.bin" }), { expiresIn: 300 });
    const put = await fetch(putUrl, { method: "PUT", body, headers: { "Content-Type": "text/plain" } });
    answers.presigned_put = put.status;
    return { answers, put_url: putUrl };
  },

  // Keys with every character class the SDK encodes its own way: each is
  // put, read back, found by a listing (paged one key at a time), copied and
  // deleted with DeleteObjects.
  async odd_keys() {
    const results = {};
    for (const key of P.keys) {
      const body = Buffer.from(`body of ${key}`);
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
      const back = await bodyBytes(await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key })));
      const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      await s3.send(new CopyObjectCommand({ Bucket: bucket, Key: `copies/${key}`, CopySource: copySource(key) }));
      results[key] = { same: back.equals(body), head_len: head.ContentLength };
    }
    const listed = [];
    for await (const page of paginateListObjectsV2({ client: s3, pageSize: 1 }, { Bucket: bucket })) {
      listed.push(...(page.Contents ?? []).map((o) => o.Key));
    }
    const del = await s3.send(
      new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: P.keys.map((Key) => ({ Key })) } }),
    );
    return {
      results,
      listed,
      deleted: (del.Deleted ?? []).map((d) => d.Key).sort(),
      errors: (del.Errors ?? []).map((e) => ({ key: e.Key, code: e.Code })),
    };
  },

  // A lib-storage Upload whose stream fails after the first part: the SDK
  // aborts the multipart upload; nothing may be stored.
  async upload_fails_midway() {
    async function* failing() {
      const piece = Buffer.alloc(1024 * 1024, 7);
      for (let i = 0; i < 7; i++) yield piece;
      throw new Error("the source stream broke");
    }
    let error = null;
    try {
      await new Upload({ client: s3, params: { Bucket: bucket, Key: "broken.bin", Body: Readable.from(failing()) } }).done();
    } catch (e) {
      error = e.message;
    }
    return { error };
  },

  // Behind a validator that grants only keys under mine/: each request
  // either succeeds or is refused, and the test checks which.
  async scoped() {
    const outcome = {};
    const attempt = async (name, fn) => {
      try {
        outcome[name] = { ok: await fn() };
      } catch (e) {
        outcome[name] = errorOf(e);
      }
    };
    const big = readFileSync("big.bin");
    await attempt("put_mine", async () => (await s3.send(new PutObjectCommand({ Bucket: bucket, Key: "mine/a", Body: "mine" }))).ETag);
    await attempt("put_theirs", () => s3.send(new PutObjectCommand({ Bucket: bucket, Key: "theirs/x", Body: "x" })).then(() => true));
    await attempt("upload_mine", () =>
      new Upload({ client: s3, params: { Bucket: bucket, Key: "mine/big", Body: unknownLengthStream(big) } }).done().then(() => true),
    );
    await attempt("upload_theirs", () =>
      new Upload({ client: s3, params: { Bucket: bucket, Key: "theirs/big", Body: unknownLengthStream(big) } }).done().then(() => true),
    );
    await attempt("get_theirs", async () => (await bodyBytes(await s3.send(new GetObjectCommand({ Bucket: bucket, Key: "theirs/secret" })))).toString());
    await attempt("copy_theirs_to_mine", () =>
      s3.send(new CopyObjectCommand({ Bucket: bucket, Key: "mine/stolen", CopySource: copySource("theirs/secret") })).then(() => true),
    );
    await attempt("copy_mine_to_theirs", () =>
      s3.send(new CopyObjectCommand({ Bucket: bucket, Key: "theirs/planted", CopySource: copySource("mine/a") })).then(() => true),
    );
    await attempt("list_mine", async () =>
      ((await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: "mine/" }))).Contents ?? []).map((o) => o.Key),
    );
    await attempt("list_all", () => s3.send(new ListObjectsV2Command({ Bucket: bucket })).then(() => true));
    const presigned = {};
    for (const [name, command, method, body] of [
      ["get_mine", new GetObjectCommand({ Bucket: bucket, Key: "mine/a" }), "GET", undefined],
      ["get_theirs", new GetObjectCommand({ Bucket: bucket, Key: "theirs/secret" }), "GET", undefined],
      ["put_theirs", new PutObjectCommand({ Bucket: bucket, Key: "theirs/presigned" }), "PUT", "planted"],
    ]) {
      const url = await getSignedUrl(s3, command, { expiresIn: 300 });
      const response = await fetch(url, { method, body });
      presigned[name] = { status: response.status, body: await response.text() };
    }
    await attempt("delete_objects", async () => {
      const out = await s3.send(
        new DeleteObjectsCommand({
          Bucket: bucket,
          Delete: { Objects: [{ Key: "mine/a" }, { Key: "theirs/secret" }, { Key: "mine/big" }] },
        }),
      );
      return {
        deleted: (out.Deleted ?? []).map((d) => d.Key).sort(),
        errors: (out.Errors ?? []).map((e) => [e.Key, e.Code]),
      };
    });
    return { outcome, presigned };
  },

  // Answers other than 200, and options off the defaults, whose outcome the
  // test compares with the same scenario run straight against versitygw:
  // 304, 412, 404 with and without a body, delimiter listings, response
  // header overrides, other checksum algorithms, tagging, DeleteObject.
  async edge() {
    const outcome = {};
    const attempt = async (name, fn) => {
      try {
        outcome[name] = { ok: await fn() };
      } catch (e) {
        outcome[name] = { status: e.$metadata?.httpStatusCode, code: e.Code ?? e.name };
      }
    };
    const put = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: "e/one.txt", Body: "one" }));
    await attempt("get_if_none_match", () => s3.send(new GetObjectCommand({ Bucket: bucket, Key: "e/one.txt", IfNoneMatch: put.ETag })).then(() => true));
    await attempt("get_if_match_other", () => s3.send(new GetObjectCommand({ Bucket: bucket, Key: "e/one.txt", IfMatch: '"0123456789abcdef0123456789abcdef"' })).then(() => true));
    await attempt("get_missing", () => s3.send(new GetObjectCommand({ Bucket: bucket, Key: "e/missing" })).then(() => true));
    await attempt("head_missing", () => s3.send(new HeadObjectCommand({ Bucket: bucket, Key: "e/missing" })).then(() => true));
    await attempt("get_missing_bucket", () => s3.send(new GetObjectCommand({ Bucket: P.missing_bucket, Key: "x" })).then(() => true));
    await attempt("get_overrides", async () => {
      const r = await s3.send(
        new GetObjectCommand({
          Bucket: bucket,
          Key: "e/one.txt",
          ResponseContentDisposition: 'attachment; filename="one.txt"',
          ResponseContentType: "text/x-one",
          ResponseCacheControl: "no-cache",
        }),
      );
      await r.Body.transformToByteArray();
      return [r.ContentDisposition, r.ContentType, r.CacheControl];
    });
    for (const k of ["e/d1/a", "e/d1/b", "e/d2/c", "e/top"]) {
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: k, Body: k }));
    }
    await attempt("list_delimiter", async () => {
      const r = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: "e/", Delimiter: "/" }));
      return { keys: (r.Contents ?? []).map((o) => o.Key), prefixes: (r.CommonPrefixes ?? []).map((p) => p.Prefix) };
    });
    for (const algorithm of ["CRC32C", "SHA1", "SHA256", "CRC64NVME"]) {
      const body = Buffer.alloc(100_000, algorithm.length);
      await attempt(`put_${algorithm}_buffer`, async () => {
        const r = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `e/sum-${algorithm}`, Body: body, ChecksumAlgorithm: algorithm }));
        return r[`Checksum${algorithm}`] ?? null;
      });
      await attempt(`put_${algorithm}_stream`, async () => {
        const r = await s3.send(
          new PutObjectCommand({ Bucket: bucket, Key: `e/sum-${algorithm}-stream`, Body: createReadStream("edge.bin"), ChecksumAlgorithm: algorithm }),
        );
        return r[`Checksum${algorithm}`] ?? null;
      });
    }
    await attempt("put_tagging", () =>
      s3.send(new PutObjectTaggingCommand({ Bucket: bucket, Key: "e/one.txt", Tagging: { TagSet: [{ Key: "k", Value: "v w" }] } })).then(() => true),
    );
    await attempt("get_tagging", async () =>
      (await s3.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: "e/one.txt" }))).TagSet.map((t) => [t.Key, t.Value]),
    );
    await attempt("put_if_none_match_existing", () =>
      s3.send(new PutObjectCommand({ Bucket: bucket, Key: "e/one.txt", Body: "two", IfNoneMatch: "*" })).then(() => true),
    );
    await attempt("delete_one", async () => (await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: "e/top" }))).$metadata.httpStatusCode);
    await attempt("delete_missing", async () => (await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: "e/never" }))).$metadata.httpStatusCode);
    return { outcome };
  },

  // PutObject with every content header the S3 API takes; the test reads
  // what was stored.
  async content_headers() {
    await s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: "content-headers.txt",
        Body: "hello",
        ContentType: "text/plain; charset=utf-8",
        ContentDisposition: 'inline; filename="h.txt"',
        ContentLanguage: "de-CH",
        ContentEncoding: "identity",
        CacheControl: "public, max-age=3600",
        Expires: new Date("2099-01-01T00:00:00Z"),
      }),
    );
    return {};
  },

  // The wrong secret: PutObject (buffer and aws-chunked stream), a
  // multipart Upload, GetObject, ListObjectsV2 and a presigned PUT are
  // refused.
  async wrong_secret() {
    const bad = makeClient("not-the-client-secret-at-all-0000000000");
    const errors = {};
    try {
      await bad.send(new PutObjectCommand({ Bucket: bucket, Key: "forged.bin", Body: readFileSync("small.bin") }));
    } catch (e) {
      errors.put = errorOf(e);
    }
    try {
      await bad.send(new PutObjectCommand({ Bucket: bucket, Key: "forged-stream.bin", Body: createReadStream("small.bin") }));
    } catch (e) {
      errors.put_stream = errorOf(e);
    }
    try {
      const big = readFileSync("big.bin");
      await new Upload({ client: bad, params: { Bucket: bucket, Key: "forged-multipart.bin", Body: unknownLengthStream(big) } }).done();
    } catch (e) {
      errors.upload = errorOf(e);
    }
    try {
      await bad.send(new GetObjectCommand({ Bucket: bucket, Key: "exists.bin" }));
    } catch (e) {
      errors.get = errorOf(e);
    }
    try {
      await bad.send(new ListObjectsV2Command({ Bucket: bucket }));
    } catch (e) {
      errors.list = errorOf(e);
    }
    const putUrl = await getSignedUrl(bad, new PutObjectCommand({ Bucket: bucket, Key: "forged-presigned.bin" }), { expiresIn: 300 });
    const put = await fetch(putUrl, { method: "PUT", body: "forged" });
    errors.presigned_put = { status: put.status, body: await put.text() };
    return { errors };
  },
};

const name = process.argv[2];
if (!scenarios[name]) {
  console.error(`unknown scenario ${name}; known: ${Object.keys(scenarios).join(", ")}`);
  process.exit(2);
}
try {
  const result = await scenarios[name]();
  const pkg = JSON.parse(readFileSync(new URL("./node_modules/@aws-sdk/client-s3/package.json", import.meta.url)));
  result.sent = SENT;
  result.versions = { node: process.version, "client-s3": pkg.version };
  console.log("OSP-RESULT " + JSON.stringify(result));
} catch (e) {
  console.error(`scenario ${name} failed: ${e.name}: ${e.message}`);
  console.error(JSON.stringify({ status: e.$metadata?.httpStatusCode, code: e.Code, sent: SENT.slice(-3) }));
  console.error(e.stack);
  process.exit(1);
}
