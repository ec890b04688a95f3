/** documents and collections: upload, list, search, delete. */
import { done, type Http, unwrap } from "../http.js";
import type { CollectionCreate, Query, SearchRequest } from "../types.js";

export interface Upload {
  /** The file's bytes (or its text). */
  file: Blob | ArrayBuffer | Uint8Array | string;
  /** The file name the server sees (its extension picks the parser). */
  filename: string;
  collection?: string;
  path?: string;
  /** Visible to every user (admins only). */
  shared?: boolean;
}

export class DocumentsApi {
  constructor(private readonly http: Http) {}

  /** Ingest one file: `status` is `created`, `updated` or `unchanged`. */
  upload(upload: Upload) {
    const form = new FormData();
    const { file } = upload;
    const blob =
      file instanceof Blob ? file : new Blob([typeof file === "string" ? file : new Uint8Array(file)]);
    form.append("file", blob, upload.filename);
    if (upload.collection !== undefined) form.append("collection", upload.collection);
    if (upload.path !== undefined) form.append("path", upload.path);
    if (upload.shared !== undefined) form.append("shared", String(upload.shared));
    return unwrap(
      this.http.POST("/api/v1/documents", {
        // The typed body is the schema's; what is sent is the multipart form.
        body: { file: upload.filename },
        bodySerializer: () => form,
      }),
    );
  }

  list(query: Query<"list_documents_api_v1_documents_get"> = {}) {
    return unwrap(this.http.GET("/api/v1/documents", { params: { query } }));
  }

  get(documentId: number) {
    return unwrap(
      this.http.GET("/api/v1/documents/{document_id}", { params: { path: { document_id: documentId } } }),
    );
  }

  delete(documentId: number) {
    return done(
      this.http.DELETE("/api/v1/documents/{document_id}", { params: { path: { document_id: documentId } } }),
    );
  }

  search(request: SearchRequest | string) {
    const body = typeof request === "string" ? { query: request } : request;
    return unwrap(this.http.POST("/api/v1/documents/search", { body }));
  }
}

export class CollectionsApi {
  constructor(private readonly http: Http) {}

  list() {
    return unwrap(this.http.GET("/api/v1/collections"));
  }

  create(collection: CollectionCreate) {
    return unwrap(this.http.POST("/api/v1/collections", { body: collection }));
  }

  delete(collectionId: number) {
    return done(
      this.http.DELETE("/api/v1/collections/{collection_id}", {
        params: { path: { collection_id: collectionId } },
      }),
    );
  }
}
