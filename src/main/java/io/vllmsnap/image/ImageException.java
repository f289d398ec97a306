package io.vllmsnap.image;

/**
 * Why an image may not be used, published or pulled. The {@link Reason} is what status conditions, Events and the
 * agent's error body carry; the message names the image and, where there is one, the file.
 */
public class ImageException extends Exception {

    /** CamelCase names, as the agent API's other reasons. */
    public enum Reason {
        /** no {@code manifest.json.sig} beside the manifest. */
        Unsigned,
        /** the signature does not verify, is malformed, or names a key this node does not trust. */
        BadSignature,
        /** a file's bytes differ from its recorded SHA-256, or it is longer than recorded. */
        Tampered,
        /** a file is shorter than recorded. */
        Truncated,
        /** a file the manifest lists (or the manifest itself) is not there; a registry lacks one of its blobs. */
        MissingFile,
        /** the image holds a file the manifest does not list, a symbolic link or another non-regular file. */
        UnexpectedFile,
        /** the signed manifest is not of the agreed shape (unreadable JSON, a path leaving the image, a bad digest). */
        InvalidManifest,
        /** the store has no image of that name. */
        ImageNotFound,
        /** the store already holds a different image of that name (images are immutable). */
        ImageExists,
        /** a job holds the image (it is pinned): it may not be deleted now. */
        ImageInUse,
        /** the store could not be reached, or the connection broke during a transfer. */
        StoreUnavailable,
        /** the store refused the credentials, or none were given where it needs some. */
        StoreUnauthorized,
        /** the store answered something this client does not understand or cannot do (e.g. deletion disabled). */
        StoreError,
        /** the cache cannot make room: every other image is pinned, mapped by a process, or stored nowhere else. */
        CacheFull,
        /** the local file system has no room for the image. */
        NoSpaceLeft
    }

    private final Reason reason;

    public ImageException(Reason reason, String message) {
        super(message);
        this.reason = reason;
    }

    public ImageException(Reason reason, String message, Throwable cause) {
        super(message, cause);
        this.reason = reason;
    }

    public Reason reason() {
        return reason;
    }

    @Override
    public String toString() {
        return reason + ": " + getMessage();
    }
}
