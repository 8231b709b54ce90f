using System.Net;
using Microsoft.AspNetCore.Http;

namespace SessionGrains.Tests;

/// <summary>What the ticket store and the HTTP API record as a request's client.</summary>
public sealed class HttpClientInfoTests
{
    private static DefaultHttpContext Request(string? userAgent = null, params (string Name, string Value)[] headers)
    {
        var context = new DefaultHttpContext();
        context.Connection.RemoteIpAddress = IPAddress.Parse("192.0.2.1");
        if (userAgent is not null)
        {
            context.Request.Headers.UserAgent = userAgent;
        }

        foreach (var (name, value) in headers)
        {
            context.Request.Headers.Append(name, value);
        }

        return context;
    }

    [Fact]
    public void A_request_is_recorded_with_its_connection_address_and_user_agent()
    {
        Assert.Equal(new ClientInfo("192.0.2.1", "Firefox/140"), HttpClientInfo.From(Request("Firefox/140")));
    }

    [Fact]
    public void A_missing_or_empty_user_agent_is_recorded_as_none()
    {
        Assert.Null(HttpClientInfo.From(Request()).UserAgent);
        Assert.Null(HttpClientInfo.From(Request("")).UserAgent);
    }

    [Fact]
    public void Forwarding_headers_are_ignored_unless_the_caller_names_them()
    {
        var request = Request("Firefox/140", ("X-Client-IP", "203.0.113.9"), ("X-Client-User-Agent", "curl/8"));

        Assert.Equal(new ClientInfo("192.0.2.1", "Firefox/140"), HttpClientInfo.From(request));
        Assert.Equal(new ClientInfo("203.0.113.9", "curl/8"), HttpClientInfo.From(request, "X-Client-IP", "X-Client-User-Agent"));
    }

    [Fact]
    public void A_forwarding_header_sent_twice_is_ignored()
    {
        var request = Request("Firefox/140", ("X-Client-IP", "203.0.113.9"), ("X-Client-IP", "203.0.113.10"), ("X-Client-User-Agent", "curl/8"), ("X-Client-User-Agent", "wget/1"));

        Assert.Equal(new ClientInfo("192.0.2.1", "Firefox/140"), HttpClientInfo.From(request, "X-Client-IP", "X-Client-User-Agent"));
    }

    [Fact]
    public void A_forwarded_address_that_is_not_one_ip_is_refused_naming_the_header()
    {
        foreach (var junk in new[] { "<b>not-an-ip</b>", "203.0.113.9, 10.0.0.1", "example.com", new string('1', 12_000) })
        {
            var refused = Assert.Throws<ArgumentException>(() => HttpClientInfo.From(Request("Firefox/140", ("X-Client-IP", junk)), "X-Client-IP", "X-Client-User-Agent"));
            Assert.Contains("X-Client-IP", refused.Message, StringComparison.Ordinal);
        }

        // Canonical form, and an empty header means the connection's address.
        Assert.Equal("2001:db8::1", HttpClientInfo.From(Request(null, ("X-Client-IP", "2001:DB8:0:0::1")), "X-Client-IP", null).IpAddress);
        Assert.Equal("192.0.2.1", HttpClientInfo.From(Request(null, ("X-Client-IP", "")), "X-Client-IP", null).IpAddress);
    }

    [Fact]
    public void A_user_agent_is_cut_to_512_characters_without_splitting_a_character()
    {
        Assert.Equal(new string('a', 512), HttpClientInfo.From(Request(new string('a', 12_000))).UserAgent);
        Assert.Equal(new string('b', 512), HttpClientInfo.From(Request(null, ("X-Client-User-Agent", new string('b', 600))), null, "X-Client-User-Agent").UserAgent);

        var astral = new string('c', 511) + "\U0001F600" + "tail";
        Assert.Equal(new string('c', 511), ClientInfo.Normalize(new ClientInfo(null, astral))!.UserAgent);
    }
}
