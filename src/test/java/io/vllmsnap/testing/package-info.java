/**
 * Test fixtures and helpers shared by tests of several packages: {@link io.vllmsnap.testing.LocalRegistry}, a real
 * OCI registry on loopback, and {@link io.vllmsnap.testing.ManagementInterface}, the management port's address.
 */
package io.vllmsnap.testing;
