"""Tests for ganeti.utils.net (no external network needed)."""

import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ganeti import errors, pathutils, utils
from ganeti.utils import net


class TestAddresses:
    @pytest.mark.parametrize("address", ["127.0.0.1", "0.0.0.0", "192.0.2.254",
                                         "255.255.255.255"])
    def test_valid_ip4(self, address):
        assert utils.IsValidIP4(address)
        assert utils.IsValidIP(address)
        assert not utils.IsValidIP6(address)
        assert utils.GetAddressFamily(address) == socket.AF_INET

    @pytest.mark.parametrize("address", ["::1", "::", "2001:db8::1",
                                         "fe80::1:2:3:4", "::ffff:192.0.2.1"])
    def test_valid_ip6(self, address):
        assert utils.IsValidIP6(address)
        assert utils.IsValidIP(address)
        assert not utils.IsValidIP4(address)
        assert utils.GetAddressFamily(address) == socket.AF_INET6

    @pytest.mark.parametrize("address", [
        "", "1", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1.2.3.4 ",
        " 1.2.3.4", "1.2.3.4\n", "a.b.c.d", "fe80::1%eth0", "2001:db8:::1",
        "12345::", "localhost", None, 16909060, b"1.2.3.4",
    ])
    def test_invalid(self, address):
        assert not utils.IsValidIP(address)
        assert not utils.IsValidIP4(address)
        assert not utils.IsValidIP6(address)
        with pytest.raises(errors.IPAddressError):
            utils.GetAddressFamily(address)

    @given(st.ip_addresses())
    def test_any_generated_address(self, address):
        text = str(address)
        assert utils.IsValidIP(text)
        expected = socket.AF_INET if address.version == 4 else socket.AF_INET6
        assert utils.GetAddressFamily(text) == expected

    def test_netmask(self):
        assert utils.ValidateNetmask(24, socket.AF_INET)
        assert utils.ValidateNetmask(32, socket.AF_INET)
        assert not utils.ValidateNetmask(33, socket.AF_INET)
        assert not utils.ValidateNetmask(0, socket.AF_INET)
        assert not utils.ValidateNetmask("24", socket.AF_INET)
        assert not utils.ValidateNetmask(True, socket.AF_INET)
        assert utils.ValidateNetmask(128, socket.AF_INET6)
        assert not utils.ValidateNetmask(129, socket.AF_INET6)
        with pytest.raises(errors.ProgrammerError):
            utils.ValidateNetmask(24, 12345)
        with pytest.raises(errors.ProgrammerError):
            utils.IPAddress.ValidateNetmask(24)

    def test_loopback(self):
        assert utils.IP4Address.IsLoopback("127.0.0.1")
        assert utils.IP4Address.IsLoopback("127.0.1.5")
        assert not utils.IP4Address.IsLoopback("192.0.2.1")
        assert utils.IP6Address.IsLoopback("::1")
        assert utils.IPAddress.IsLoopback("::1")
        assert not utils.IP6Address.IsLoopback("2001:db8::1")
        with pytest.raises(errors.IPAddressError):
            utils.IP4Address.IsLoopback("::1")

    def test_in_network(self):
        assert utils.IPAddress.InNetwork("192.0.2.0/24", "192.0.2.7")
        assert not utils.IPAddress.InNetwork("192.0.2.0/24", "192.0.3.7")
        assert not utils.IPAddress.InNetwork("192.0.2.0/24", "::1")
        assert utils.IPAddress.InNetwork("2001:db8::/32", "2001:db8:1::1")
        with pytest.raises(errors.IPAddressError):
            utils.IPAddress.InNetwork("192.0.2.0/33", "192.0.2.1")
        with pytest.raises(errors.IPAddressError):
            utils.IPAddress.InNetwork("192.0.2.0/24", "x")

    def test_class_lookup(self):
        assert utils.IPAddress.GetClassFromIpFamily(socket.AF_INET) is \
            utils.IP4Address
        assert utils.IPAddress.GetClassFromIpVersion(6) is utils.IP6Address
        assert utils.IPAddress.GetAddressFamilyFromVersion(4) == socket.AF_INET
        assert utils.IPAddress.GetVersionFromAddressFamily(socket.AF_INET6) == 6
        with pytest.raises(errors.ProgrammerError):
            utils.IPAddress.GetClassFromIpVersion(5)

    def test_own(self):
        assert utils.IP4Address.Own("127.0.0.1")
        assert not utils.IP4Address.Own("192.0.2.1")   # TEST-NET-1
        with pytest.raises(errors.IPAddressError):
            utils.IP4Address.Own("nonsense")


class TestFormatAndSplit:
    @pytest.mark.parametrize("address, family, expected", [
        (("192.0.2.1", 1811), None, "192.0.2.1:1811"),
        (("::1", 1811), None, "[::1]:1811"),
        (("node1", 80), None, "node1:80"),
        (("::1", 80), socket.AF_INET6, "[::1]:80"),
        ("192.0.2.1", None, "192.0.2.1"),
    ])
    def test_format(self, address, family, expected):
        assert utils.FormatAddress(address, family=family) == expected

    @pytest.mark.parametrize("text, expected", [
        ("192.0.2.1:1811", ("192.0.2.1", 1811)),
        ("[::1]:1811", ("::1", 1811)),
        ("node1.example.com:80", ("node1.example.com", 80)),
    ])
    def test_split(self, text, expected):
        assert utils.SplitHostPort(text) == expected

    @pytest.mark.parametrize("text", ["192.0.2.1", "192.0.2.1:", ":80", "a:0",
                                      "a:65536", "a:x", "::1:80x", "1:2:3:80",
                                      "a:-1"])
    def test_split_invalid(self, text):
        with pytest.raises(ValueError):
            utils.SplitHostPort(text)

    @given(st.ip_addresses(), st.integers(min_value=1, max_value=65535))
    def test_round_trip(self, address, port):
        assert utils.SplitHostPort(utils.FormatAddress((str(address), port))) \
            == (str(address), port)


class TestNormalizedName:
    @pytest.mark.parametrize("name, expected", [
        ("node1", "node1"),
        ("Node1.Example.COM", "node1.example.com"),
        ("node1.example.com.", "node1.example.com"),
        ("a-b.c_d.e", "a-b.c_d.e"),
        ("1node", "1node"),
        ("x" * 63 + ".com", "x" * 63 + ".com"),
    ])
    def test_valid(self, name, expected):
        assert utils.Hostname.GetNormalizedName(name) == expected

    @pytest.mark.parametrize("name", [
        "", ".", "..", "a..b", ".a", "a.b..", "-node", "node-", "no de",
        "node/1", "n\u00f6de", "x" * 64, ".".join(["a" * 60] * 5), "node\n",
        "a.-b.c", None, 5,
    ])
    def test_invalid(self, name):
        with pytest.raises(errors.OpPrereqError) as info:
            utils.Hostname.GetNormalizedName(name)
        assert info.value.args[1] == errors.ECODE_INVAL
        assert str(name) in info.value.args[0] or name is None

    @given(st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?"
                         r"(\.[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?){0,3}",
                         fullmatch=True))
    def test_valid_names_are_idempotent(self, name):
        normalized = utils.Hostname.GetNormalizedName(name.upper())
        assert normalized == name
        assert utils.Hostname.GetNormalizedName(normalized) == normalized


class TestHostname:
    @pytest.fixture
    def fake_dns(self, monkeypatch):
        table = {
            "node1.example.com": [(socket.AF_INET, "192.0.2.1"),
                                  (socket.AF_INET6, "2001:db8::1")],
            "v6only.example.com": [(socket.AF_INET6, "2001:db8::2")],
        }

        def _getaddrinfo(host, port, family=0, type_=0, *args):
            entries = [(fam, addr) for fam, addr in table.get(host, [])
                       if family in (0, fam)]
            if not entries:
                raise socket.gaierror(socket.EAI_NONAME,
                                      "Name or service not known")
            return [(fam, socket.SOCK_STREAM, 6, "", (addr, 0))
                    for fam, addr in entries]

        def _getfqdn(name=""):
            return {"node1": "node1.example.com"}.get(name, name)

        monkeypatch.setattr(net.socket, "getaddrinfo", _getaddrinfo)
        monkeypatch.setattr(net.socket, "getfqdn", _getfqdn)
        return table

    def test_resolve(self, fake_dns):
        host = utils.GetHostname("node1")
        assert host.name == "node1.example.com"
        assert host.ip == "192.0.2.1"
        assert "node1.example.com" in repr(host)

    def test_family(self, fake_dns):
        assert utils.GetHostname("NODE1.example.com",
                                 family=socket.AF_INET6).ip == "2001:db8::1"
        with pytest.raises(errors.ResolverError):
            utils.GetHostname("v6only.example.com", family=socket.AF_INET)

    def test_unknown(self, fake_dns):
        with pytest.raises(errors.ResolverError) as info:
            utils.GetHostname("nosuchhost.example.com")
        name, code, message = info.value.args
        assert name == "nosuchhost.example.com"
        assert code == socket.EAI_NONAME
        assert "not known" in message

    def test_invalid_name(self, fake_dns):
        with pytest.raises(errors.OpPrereqError):
            utils.GetHostname("bad name")

    def test_invalid_family(self, fake_dns):
        with pytest.raises(errors.ProgrammerError):
            utils.Hostname.GetIP("node1.example.com", family=12345)

    def test_sysname_virtual(self, fake_dns, tmp_path):
        root = tmp_path / "Node1.Example.COM"
        try:
            pathutils._SetRoot(str(root), hostname="Node1.Example.COM")
            assert utils.Hostname.GetSysName() == "node1.example.com"
            assert utils.GetHostname().ip == "192.0.2.1"
        finally:
            pathutils.Reload()

    def test_sysname_real(self, monkeypatch):
        pathutils.Reload({})
        try:
            monkeypatch.setattr(net.socket, "getfqdn", lambda name="": "Host.X")
            assert utils.Hostname.GetSysName() == "host.x"
        finally:
            pathutils.Reload()

    def test_localhost_real_resolver(self):
        host = utils.GetHostname("localhost", family=socket.AF_INET)
        assert utils.IP4Address.IsLoopback(host.ip)


class TestTcpPing:
    @pytest.fixture
    def listener(self):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            sock.listen(5)
            yield sock.getsockname()[1]

    @pytest.fixture
    def closed_port(self):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        return port

    def test_live_port(self, listener):
        assert utils.TcpPing("127.0.0.1", listener, timeout=5)
        assert utils.TcpPing("127.0.0.1", listener, timeout=5,
                             live_port_needed=True)

    def test_closed_port(self, closed_port):
        # A refusal proves the host is up, unless the port itself must live
        assert utils.TcpPing("127.0.0.1", closed_port, timeout=5)
        assert not utils.TcpPing("127.0.0.1", closed_port, timeout=5,
                                 live_port_needed=True)

    def test_source(self, listener):
        assert utils.TcpPing("127.0.0.1", listener, timeout=5,
                             source="127.0.0.1")
        assert not utils.TcpPing("127.0.0.1", listener, timeout=5,
                                 source="192.0.2.1")

    def test_invalid_target(self):
        with pytest.raises(errors.IPAddressError):
            utils.TcpPing("not-an-ip", 80)
