/**
 * Snapshot images that travel between nodes, and why a node may trust them: the image format contract (a directory
 * whose {@code manifest.json} lists every file with its size and SHA-256), the detached Ed25519 signature of those
 * manifest bytes ({@code manifest.json.sig}), and {@link io.vllmsnap.image.ImageVerifier}, which checks signature,
 * file set and digests before CRIU may read a byte, and remembers a verified node-local copy by file identity so a
 * restore does not hash it again. Stores live in {@code image.store} and {@code image.oci}, the node cache in
 * {@code image.cache}. This package depends on no other vllmsnap package: engine, agent and operator import it.
 */
package io.vllmsnap.image;
