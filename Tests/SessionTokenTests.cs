using System.Buffers.Text;

namespace SessionGrains.Tests;

public sealed class SessionTokenTests
{
    [Fact]
    public void A_new_token_has_the_prefix_and_256_random_bits_in_base64url()
    {
        var token = SessionToken.Create();
        Assert.Equal(SessionToken.Length, token.Value.Length);
        Assert.StartsWith(SessionToken.Prefix, token.Value, StringComparison.Ordinal);
        Assert.Equal(32, Base64Url.DecodeFromChars(token.Value.AsSpan(SessionToken.Prefix.Length)).Length);
        Assert.Matches("^sg1_[A-Za-z0-9_-]{43}$", token.Value);
    }

    [Fact]
    public void The_session_id_is_the_sha256_of_the_token_and_not_the_token()
    {
        var token = SessionToken.Create();
        Assert.True(SessionToken.TryParse(token.Value, out var parsed));
        Assert.Equal(token.SessionId, parsed.SessionId);
        Assert.True(SessionToken.IsWellFormedSessionId(token.SessionId));
        Assert.DoesNotContain(token.Value[SessionToken.Prefix.Length..], token.SessionId, StringComparison.Ordinal);
        var random = Base64Url.DecodeFromChars(token.Value.AsSpan(SessionToken.Prefix.Length));
        Assert.Equal(Base64Url.EncodeToString(System.Security.Cryptography.SHA256.HashData(random)), token.SessionId);
    }

    [Fact]
    public void Tokens_do_not_repeat()
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < 100_000; i++)
        {
            Assert.True(seen.Add(SessionToken.Create().Value));
        }
    }

    [Fact]
    public void ToString_never_shows_the_token()
    {
        var token = SessionToken.Create();
        Assert.DoesNotContain(token.Value, token.ToString(), StringComparison.Ordinal);
        Assert.Contains(token.SessionId[..8], token.ToString(), StringComparison.Ordinal);
    }

    public static TheoryData<string> NotTokens()
    {
        var valid = SessionToken.Create();
        return new TheoryData<string>
        {
            "",
            "   ",
            new string('a', 1024 * 1024),
            "sg1_" + new string('!', 43),
            valid.Value[..^1] + "\0",
            valid.Value.Insert(10, "\0")[..SessionToken.Length],
            valid.SessionId,
            "sg2_" + valid.Value[4..],
            valid.Value + "A",
            valid.Value.Replace('_', '/').Replace('-', '+'),
        };
    }

    [Theory]
    [MemberData(nameof(NotTokens))]
    public void Malformed_tokens_are_refused_without_a_lookup(string value) =>
        Assert.False(SessionToken.TryParse(value, out _));

    [Fact]
    public void A_null_token_is_refused() => Assert.False(SessionToken.TryParse(null, out _));

    [Fact]
    public void A_non_canonical_encoding_of_the_same_bytes_is_refused()
    {
        var token = SessionToken.Create().Value;
        // The last of 43 base64url characters carries 2 unused bits; flipping them keeps the bytes.
        var last = token[^1];
        var index = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".IndexOf(last, StringComparison.Ordinal);
        var altered = token[..^1] + "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[index ^ 1];
        Assert.False(SessionToken.TryParse(altered, out _));
    }
}
