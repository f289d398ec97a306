package io.vllmsnap.agent.client;

import org.jboss.logging.Logger;

import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509ExtendedTrustManager;
import javax.net.ssl.X509TrustManager;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.CertificateParsingException;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.Arrays;
import java.util.Collection;
import java.util.List;
import java.util.Optional;

/**
 * TLS towards agents: trust only the agent CA (a PEM file from a Secret mount, read again when it changes, so a
 * renewed CA is trusted without a restart), and check that the server certificate names the agent instead of the
 * address dialled. Agents are reached by pod IP, which changes with every pod, while their certificate carries a
 * DNS name: the agent Service's name when all agents share one certificate, or, with per-pod certificates, a name
 * that contains the agent pod's own name ({@value #POD_PLACEHOLDER} in the configured server name). Then the key of
 * one node's agent cannot pass for another node's agent.
 */
public final class AgentTls {

    /** Placeholder in the server name for the name of the agent pod being dialled. */
    public static final String POD_PLACEHOLDER = "{pod}";
    private static final Logger LOG = Logger.getLogger(AgentTls.class);

    private AgentTls() {
    }

    /** One shared server name, the CA file checked for changes at most every 30 s. */
    public static SSLContext context(Path caPemFile, String serverName) throws IOException, GeneralSecurityException {
        return context(caPemFile, serverName, Duration.ofSeconds(30), AgentPeers.NONE);
    }

    /**
     * @param serverName     the DNS name the agent certificate must carry; may contain {@value #POD_PLACEHOLDER}
     * @param reloadInterval how often at most the CA file is looked at again (zero: on every handshake)
     * @param peers          the agent pod behind a dialled address (needed when the name contains the placeholder)
     * @throws IOException when the CA file cannot be read or holds no certificate at start
     */
    public static SSLContext context(Path caPemFile, String serverName, Duration reloadInterval, AgentPeers peers)
            throws IOException, GeneralSecurityException {
        ReloadingTrust trust = new ReloadingTrust(caPemFile, reloadInterval);
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(null, new TrustManager[] {new NamedServerTrustManager(trust, serverName, peers)}, null);
        return ctx;
    }

    /** The CA bundle, parsed again when the file's content changes; a broken new file keeps the last good one. */
    static final class ReloadingTrust {
        private final Path caFile;
        private final long intervalNanos;
        private volatile X509TrustManager current;
        private volatile byte[] currentBytes;
        private volatile long checkedAt;

        ReloadingTrust(Path caFile, Duration interval) throws IOException, GeneralSecurityException {
            this.caFile = caFile;
            this.intervalNanos = interval.toNanos();
            byte[] bytes = Files.readAllBytes(caFile);
            this.current = trustManager(bytes, caFile);
            this.currentBytes = bytes;
            this.checkedAt = System.nanoTime();
        }

        X509TrustManager get() {
            if (System.nanoTime() - checkedAt >= intervalNanos) {
                synchronized (this) {
                    if (System.nanoTime() - checkedAt >= intervalNanos) {
                        reloadIfChanged();
                        checkedAt = System.nanoTime();
                    }
                }
            }
            return current;
        }

        private void reloadIfChanged() {
            byte[] bytes;
            try {
                bytes = Files.readAllBytes(caFile);
            } catch (IOException e) {
                LOG.warnf("cannot read the agent CA %s (%s): still trusting the one read before", caFile, e.getMessage());
                return;
            }
            if (Arrays.equals(bytes, currentBytes)) {
                return;
            }
            try {
                current = trustManager(bytes, caFile);
                currentBytes = bytes;
                LOG.infof("agent CA %s changed: trusting the new one", caFile);
            } catch (IOException | GeneralSecurityException e) {
                LOG.warnf("the agent CA %s changed but cannot be used (%s): still trusting the one read before", caFile, e.getMessage());
            }
        }

        private static X509TrustManager trustManager(byte[] pem, Path source) throws IOException, GeneralSecurityException {
            KeyStore trust = KeyStore.getInstance(KeyStore.getDefaultType());
            trust.load(null, null);
            int i = 0;
            for (var cert : CertificateFactory.getInstance("X.509").generateCertificates(new ByteArrayInputStream(pem))) {
                trust.setCertificateEntry("agent-ca-" + i++, cert);
            }
            if (i == 0) {
                throw new CertificateException("no certificate in " + source);
            }
            TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
            tmf.init(trust);
            return (X509TrustManager) tmf.getTrustManagers()[0];
        }
    }

    /** Chain validated against the CA; then the leaf must carry the expected name in its DNS subject alternative names. */
    static final class NamedServerTrustManager extends X509ExtendedTrustManager {
        private final ReloadingTrust trust;
        private final String serverName;
        private final AgentPeers peers;

        NamedServerTrustManager(ReloadingTrust trust, String serverName, AgentPeers peers) {
            this.trust = trust;
            this.serverName = serverName;
            this.peers = peers;
        }

        private void check(X509Certificate[] chain, String authType, String peerHost) throws CertificateException {
            trust.get().checkServerTrusted(chain, authType);
            String expected = expectedName(peerHost);
            List<String> names = dnsNames(chain[0]);
            if (!names.contains(expected)) {
                throw new CertificateException("agent certificate does not name " + expected + " (has " + names + ")");
            }
        }

        private String expectedName(String peerHost) throws CertificateException {
            if (!serverName.contains(POD_PLACEHOLDER)) {
                return serverName;
            }
            Optional<String> pod = peerHost == null ? Optional.empty() : peers.podAt(peerHost);
            return serverName.replace(POD_PLACEHOLDER, pod.orElseThrow(() -> new CertificateException(
                    "no agent pod is known at " + peerHost + ": its certificate cannot be checked")));
        }

        @Override
        public void checkServerTrusted(X509Certificate[] chain, String authType) throws CertificateException {
            check(chain, authType, null);
        }

        @Override
        public void checkServerTrusted(X509Certificate[] chain, String authType, Socket socket) throws CertificateException {
            String host = socket instanceof SSLSocket ssl && ssl.getHandshakeSession() != null ? ssl.getHandshakeSession().getPeerHost() : null;
            check(chain, authType, host);
        }

        @Override
        public void checkServerTrusted(X509Certificate[] chain, String authType, SSLEngine engine) throws CertificateException {
            check(chain, authType, engine == null ? null : engine.getPeerHost());
        }

        @Override
        public void checkClientTrusted(X509Certificate[] chain, String authType) throws CertificateException {
            throw new CertificateException("client certificates are not used");
        }

        @Override
        public void checkClientTrusted(X509Certificate[] chain, String authType, Socket socket) throws CertificateException {
            checkClientTrusted(chain, authType);
        }

        @Override
        public void checkClientTrusted(X509Certificate[] chain, String authType, SSLEngine engine) throws CertificateException {
            checkClientTrusted(chain, authType);
        }

        @Override
        public X509Certificate[] getAcceptedIssuers() {
            return trust.get().getAcceptedIssuers();
        }

        private static List<String> dnsNames(X509Certificate cert) throws CertificateParsingException {
            Collection<List<?>> names = cert.getSubjectAlternativeNames();
            if (names == null) {
                return List.of();
            }
            return names.stream().filter(n -> Integer.valueOf(2).equals(n.get(0))).map(n -> (String) n.get(1)).toList();
        }
    }
}
