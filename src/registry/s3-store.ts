// Blob objects in S3-compatible object storage (Ceph RGW, MinIO, AWS S3), one S3 multipart upload
// per object: the store's handle is the UploadId, parts map to S3 parts one to one, and S3 itself
// keeps an object invisible until CompleteMultipartUpload.
//
// S3 refuses parts under 5 MiB except the last, so callers cut uploads into chunks of 32 MiB
// (the registry's chunk size); a smaller blob is a single part, which may be any size.
//
// The client is made by the caller. For stores without aws-chunked uploads (older Ceph RGW, s3rver),
// create it with `requestChecksumCalculation: 'WHEN_REQUIRED'`: by default the SDK sends a stream
// body aws-chunked with a trailing checksum, which such a store keeps verbatim or refuses. (A
// corrupted object would not go unnoticed: every segment's GCM tag is checked on read.)
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import { AppError, notFound } from '../domain/errors.js';
import type { BlobStore, ByteRange, StoredPart } from './blob-store.js';
import { assertRange, assertStorageKey } from './fs-store.js';

export interface S3BlobStoreOptions {
  readonly client: S3Client;
  readonly bucket: string;
  /** Prepended to every key, e.g. 'fabrik/blobs/'; '' for the bucket's root. */
  readonly prefix: string;
}

function statusOf(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

export class S3BlobStore implements BlobStore {
  readonly kind = 's3' as const;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;

  constructor(opts: S3BlobStoreOptions) {
    this.client = opts.client;
    this.bucket = opts.bucket;
    this.prefix = opts.prefix;
  }

  private keyOf(key: string): string {
    assertStorageKey(key);
    return this.prefix + key;
  }

  async start(key: string): Promise<string> {
    const r = await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: this.keyOf(key) }));
    if (!r.UploadId) throw new AppError('UNAVAILABLE', 'the object store started an upload without an UploadId');
    return r.UploadId;
  }

  /** `offset` is implied by the part number in S3; the length is sent so the body can stream. */
  async writePart(
    key: string,
    handle: string,
    part: number,
    _offset: number,
    length: number,
    body: Readable,
  ): Promise<StoredPart> {
    try {
      const r = await this.client.send(
        new UploadPartCommand({
          Bucket: this.bucket,
          Key: this.keyOf(key),
          UploadId: handle,
          PartNumber: part,
          ContentLength: length,
          Body: body,
        }),
      );
      if (!r.ETag) throw new AppError('UNAVAILABLE', `the object store stored part ${part} without an ETag`);
      return { part, etag: r.ETag };
    } catch (err) {
      body.destroy();
      throw err;
    }
  }

  async finish(key: string, handle: string, parts: readonly StoredPart[]): Promise<void> {
    const sorted = [...parts].sort((a, b) => a.part - b.part);
    await this.client.send(
      new CompleteMultipartUploadCommand({
        Bucket: this.bucket,
        Key: this.keyOf(key),
        UploadId: handle,
        MultipartUpload: { Parts: sorted.map((p) => ({ PartNumber: p.part, ETag: p.etag })) },
      }),
    );
  }

  async abort(key: string, handle: string): Promise<void> {
    try {
      await this.client.send(
        new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: this.keyOf(key), UploadId: handle }),
      );
    } catch (err) {
      // Aborted or finished already: nothing left to drop.
      if (statusOf(err) !== 404) throw err;
    }
  }

  async read(key: string, range?: ByteRange): Promise<Readable> {
    if (range) assertRange(range);
    try {
      const r = await this.client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: this.keyOf(key),
          Range: range ? `bytes=${range.start}-${range.end}` : undefined,
        }),
      );
      // A store that ignored the range (s3rver does for `bytes=0-0`) would hand out wrong bytes.
      if (range && r.ContentLength !== undefined && r.ContentLength > range.end - range.start + 1) {
        (r.Body as Readable | undefined)?.destroy();
        throw new AppError('UNAVAILABLE', `the object store answered ${r.ContentLength} bytes for a range of fewer`);
      }
      // In Node the SDK's body is a Readable (an IncomingMessage with helpers mixed in).
      return r.Body as Readable;
    } catch (err) {
      if (statusOf(err) === 404) throw notFound('blob object', key);
      throw err;
    }
  }

  async size(key: string): Promise<number | undefined> {
    try {
      const r = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.keyOf(key) }));
      return r.ContentLength;
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.keyOf(key) }));
  }
}
