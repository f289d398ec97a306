/** Small helpers shared by tests of several packages. */
package io.vllmsnap.testing;
