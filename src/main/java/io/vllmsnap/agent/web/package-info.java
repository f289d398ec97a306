/**
 * The node agent's HTTPS API and its guards: who may call it (an audience-bound, pod-bound token of the operator's
 * service account, checked by TokenReview with bounded caches and a per-client budget), what it reads (small, strict
 * JSON bodies of IDs) and how it refuses (one JSON error shape). Health and metrics are served elsewhere, on the
 * management port. docs/agent.md and docs/security.md describe the rules and the tests of each.
 */
package io.vllmsnap.agent.web;
