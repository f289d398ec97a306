/**
 * The node cache: the only place a restore reads an image from. {@link io.vllmsnap.image.cache.NodeImageCache}
 * keeps complete, verified, root-only copies per namespace under a size limit, pulls a missing one from the
 * configured store, and evicts the least recently used copies that can be pulled again, never one a job holds or
 * a running process maps ({@link io.vllmsnap.image.cache.MappedFiles}).
 */
package io.vllmsnap.image.cache;
