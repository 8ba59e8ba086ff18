"""``[tls]`` of the target file: how the harness speaks TLS to a ``wss://`` target, and what a
failed TLS handshake means, in one line naming the key that fixes it.

Staging endpoints present certificates from a private CA (``ca_file``), sometimes under a name
other than the URL's host (``server_name``), sometimes ask for a client certificate
(``client_cert`` / ``client_key``); a throwaway deployment may have a self-signed one that
nobody wants to trust (``verify = false``, loud in the terminal, ``results.json`` and the
report).
"""

from __future__ import annotations

import functools
import ssl
from dataclasses import dataclass

from harness.core.failures import UsageError

#: OpenSSL's reasons for a peer that does not speak TLS at all (a plain-HTTP port).
_NOT_TLS = frozenset(
    {
        "WRONG_VERSION_NUMBER",
        "HTTP_REQUEST",
        "RECORD_LAYER_FAILURE",
        "PACKET_LENGTH_TOO_LONG",
        "UNKNOWN_PROTOCOL",
        "UNEXPECTED_EOF_WHILE_READING",
    }
)
#: Alerts a server sends when it wants a client certificate it did not get or does not trust.
_CLIENT_REFUSED = frozenset(
    {
        "TLSV13_ALERT_CERTIFICATE_REQUIRED",
        "SSLV3_ALERT_HANDSHAKE_FAILURE",
        "SSLV3_ALERT_BAD_CERTIFICATE",
        "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
        "SSLV3_ALERT_CERTIFICATE_EXPIRED",
        "SSLV3_ALERT_CERTIFICATE_REVOKED",
        "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE",
        "TLSV1_ALERT_UNKNOWN_CA",
        "TLSV1_ALERT_ACCESS_DENIED",
        "TLSV1_ALERT_DECRYPT_ERROR",
    }
)
#: X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_CERT_HAS_EXPIRED, X509_V_ERR_CERT_NOT_YET_VALID.
_HOSTNAME_MISMATCH, _EXPIRED, _NOT_YET_VALID = 62, 10, 9


class TlsError(UsageError):
    """``[tls]`` settings that cannot be used (a file that does not load); one line."""


@dataclass(frozen=True)
class Tls:
    """The ``[tls]`` table. Paths are absolute (the target file's are resolved against its
    directory)."""

    ca_file: str | None = None
    verify: bool = True
    client_cert: str | None = None
    client_key: str | None = None
    server_name: str | None = None

    def context(self) -> ssl.SSLContext:
        """The client context these settings describe (one per settings: loading a CA file
        for every connection would cost each test milliseconds). Raises :class:`TlsError`."""
        return _context(self)

    @property
    def warning(self) -> str | None:
        """What a run must say loudly about these settings (``verify = false``)."""
        if self.verify:
            return None
        return (
            "TLS certificate verification is off (tls.verify = false): the server's identity "
            "was not checked"
        )


@functools.cache
def _context(tls: Tls) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(cafile=tls.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise TlsError(f"tls.ca_file: {tls.ca_file} does not load ({_why(exc)})") from None
    if not tls.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if tls.client_cert:
        try:
            context.load_cert_chain(tls.client_cert, tls.client_key)
        except (OSError, ssl.SSLError) as exc:
            key = "tls.client_key" if tls.client_key else "tls.client_cert"
            raise TlsError(
                f"{key}: the client certificate {tls.client_cert}"
                + (f" and key {tls.client_key}" if tls.client_key else "")
                + f" do not load ({_why(exc)})"
            ) from None
    return context


def _why(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason).replace("_", " ").lower()
    return getattr(exc, "strerror", None) or str(exc)


def explain(exc: BaseException, tls: Tls, where: str, name: str) -> str | None:
    """One line for a TLS failure talking to ``where`` (``host:port``) under server name
    ``name``, naming the ``[tls]`` key that fixes it; None when ``exc`` is not about TLS."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        code = exc.verify_code
        message = exc.verify_message or _why(exc)
        if code == _HOSTNAME_MISMATCH:
            return (
                f"TLS: the certificate of {where} is not for {name!r} ({message}): set "
                "tls.server_name to a name the certificate has"
            )
        if code in (_EXPIRED, _NOT_YET_VALID):
            return (
                f"TLS: the certificate of {where} is not valid now ({message}): renew it, or set "
                "tls.verify = false"
            )
        signed = (
            f" (tls.ca_file = {tls.ca_file} did not sign it)"
            if tls.ca_file
            else " (a private or self-signed CA)"
        )
        return (
            f"TLS: the certificate of {where} is not trusted: {message}{signed}; set "
            "tls.ca_file to the CA certificate that signed it, or tls.verify = false"
        )
    if isinstance(exc, ssl.SSLError):
        reason = str(exc.reason or "")
        if reason in _NOT_TLS or isinstance(exc, ssl.SSLEOFError):
            return (
                f"TLS: {where} does not speak TLS ({_why(exc)}; a plain-HTTP port?): use ws:// "
                "in url, or the port that serves TLS"
            )
        if reason in _CLIENT_REFUSED:
            if not tls.client_cert:
                return (
                    f"TLS: {where} wants a client certificate ({_why(exc)}): set "
                    "tls.client_cert and tls.client_key"
                )
            return (
                f"TLS: {where} refused the client certificate tls.client_cert = "
                f"{tls.client_cert} ({_why(exc)}): use one its CA signed"
            )
        return f"TLS: the handshake with {where} failed ({_why(exc)})"
    return None


def closed_after_handshake(tls: Tls, where: str) -> str:
    """One line for a server that completed the TLS handshake, then closed without a word: how
    a TLS 1.3 server refuses a client certificate when its alert is lost."""
    if not tls.client_cert:
        return (
            f"TLS: {where} closed the connection right after the TLS handshake, without an "
            "answer: does it want a client certificate? set tls.client_cert and tls.client_key"
        )
    return (
        f"TLS: {where} closed the connection right after the TLS handshake, without an answer: "
        f"did it refuse the client certificate tls.client_cert = {tls.client_cert}? use one its "
        "CA signed"
    )
