/**
 * Test fixtures that stand up real parts for any test of the project: {@link io.vllmsnap.testing.LocalRegistry}, a
 * real OCI registry on loopback.
 */
package io.vllmsnap.testing;
