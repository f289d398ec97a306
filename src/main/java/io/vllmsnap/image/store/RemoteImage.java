package io.vllmsnap.image.store;

import io.vllmsnap.image.ImageException;
import io.vllmsnap.image.ImageFiles;

import java.io.IOException;
import java.io.OutputStream;

/** One image in a store, opened for reading: its manifest and signature bytes, and its files on request. */
public interface RemoteImage extends AutoCloseable {

    /** The manifest's bytes as stored (not yet trusted: the puller checks the signature). */
    byte[] manifest();

    /** The signature file's bytes, null when the store has none. */
    byte[] signature();

    /**
     * Writes one file's bytes to {@code out}, from its start. {@link #verifiesDigests()} says whether this call
     * itself refuses bytes that do not hash to {@code entry.sha256()} ({@code Tampered}); the puller hashes them
     * otherwise. A file the store lacks is {@code MissingFile}; a broken connection is {@code StoreUnavailable}
     * (or a plain {@link IOException}).
     */
    void fetch(ImageFiles.Entry entry, OutputStream out) throws ImageException, IOException;

    boolean verifiesDigests();

    @Override
    default void close() {
    }
}
