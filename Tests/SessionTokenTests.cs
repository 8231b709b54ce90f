using System.Buffers.Text;
using System.Security.Cryptography;
using Microsoft.Extensions.Options;

namespace SessionGrains.Tests;

/// <summary>The token format: 256 random bits, a MAC under a rotating server key, and the session id derived from it.</summary>
public sealed class SessionTokenTests
{
    private readonly SessionTokenCodec _codec = new([SessionTokenKey.Generate("k2"), SessionTokenKey.Generate("k1")]);

    [Fact]
    public void A_token_is_prefix_key_id_and_base64url_of_256_random_bits_and_a_128_bit_mac()
    {
        var token = _codec.Create();
        Assert.Matches("^sg1_k2_[A-Za-z0-9_-]{64}$", token.Value);
        Assert.Equal(48, Base64Url.DecodeFromChars(token.Value.AsSpan("sg1_k2_".Length)).Length);
    }

    [Fact]
    public void The_session_id_is_the_sha256_of_the_random_bits_and_shares_nothing_with_the_token()
    {
        var token = _codec.Create();
        var random = Base64Url.DecodeFromChars(token.Value.AsSpan("sg1_k2_".Length))[..32];

        Assert.Equal(Base64Url.EncodeToString(SHA256.HashData(random)), token.SessionId);
        Assert.True(SessionIds.IsWellFormedSessionId(token.SessionId));
        Assert.True(_codec.TryParse(token.Value, out var parsed));
        Assert.Equal(token.SessionId, parsed.SessionId);
        for (var i = 0; i + 8 <= token.SessionId.Length; i++)
        {
            Assert.DoesNotContain(token.SessionId.Substring(i, 8), token.Value, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void A_million_tokens_do_not_repeat_and_use_only_the_base64url_alphabet()
    {
        var seen = new HashSet<string>(1_000_000, StringComparer.Ordinal);
        var characterCounts = new int[128];
        for (var i = 0; i < 1_000_000; i++)
        {
            var value = _codec.Create().Value;
            Assert.True(seen.Add(value));
            foreach (var c in value.AsSpan(7, 43)) // the random part only: the MAC follows it
            {
                characterCounts[c]++;
            }
        }

        // 43 characters carry 256 bits; each of the 64 symbols should appear about equally (chi-square, 63 degrees of freedom).
        var used = characterCounts.Select((count, c) => (count, c)).Where(x => x.count > 0).ToList();
        Assert.Equal(64, used.Count);
        Assert.All(used, x => Assert.True(char.IsAsciiLetterOrDigit((char)x.c) || x.c is '-' or '_'));
        var firstCharacters = new Dictionary<char, int>();
        foreach (var value in seen.Take(200_000))
        {
            firstCharacters[value[7]] = firstCharacters.GetValueOrDefault(value[7]) + 1;
        }

        var expected = 200_000 / 64.0;
        var chiSquare = firstCharacters.Values.Sum(o => (o - expected) * (o - expected) / expected);
        Assert.InRange(chiSquare, 20, 130); // p ≈ 1e-6 on either side for 63 degrees of freedom
    }

    [Fact]
    public void ToString_never_shows_the_token()
    {
        var token = _codec.Create();
        Assert.DoesNotContain(token.Value, token.ToString(), StringComparison.Ordinal);
        Assert.Contains(token.SessionId[..8], token.ToString(), StringComparison.Ordinal);
    }

    public static TheoryData<string> NotTokens()
    {
        var valid = new SessionTokenCodec([SessionTokenKey.Generate("k2")]).Create().Value;
        return new TheoryData<string>
        {
            "",
            "   ",
            new string('a', 1024 * 1024),
            "sg1_k2_" + new string('!', 64),
            valid[..^1] + "\0",
            valid.Insert(12, "\0")[..valid.Length],
            "sg2_" + valid[4..],
            valid + "A",
            valid[..^1],
            valid.Replace('_', '/').Replace('-', '+'),
        };
    }

    [Theory]
    [MemberData(nameof(NotTokens))]
    public void Malformed_tokens_are_refused(string value) => Assert.False(_codec.TryParse(value, out _));

    [Fact]
    public void A_null_token_or_a_session_id_is_refused()
    {
        Assert.False(_codec.TryParse(null, out _));
        Assert.False(_codec.TryParse(_codec.Create().SessionId, out _));
    }

    [Fact]
    public void A_token_with_any_character_of_its_mac_or_random_bits_changed_is_refused()
    {
        var token = _codec.Create().Value;
        for (var i = "sg1_k2_".Length; i < token.Length; i++)
        {
            var altered = token[..i] + (token[i] == 'A' ? 'B' : 'A') + token[(i + 1)..];
            Assert.False(_codec.TryParse(altered, out _), $"accepted a change at position {i}");
        }
    }

    [Fact]
    public void A_token_signed_by_an_unknown_key_is_refused_even_with_a_known_key_id()
    {
        var impostor = new SessionTokenCodec([SessionTokenKey.Generate("k2")]);
        Assert.False(_codec.TryParse(impostor.Create().Value, out _));
    }

    [Fact]
    public void Rotated_keys_keep_old_tokens_working_until_the_key_is_removed()
    {
        var oldKey = SessionTokenKey.Generate("2025");
        var newKey = SessionTokenKey.Generate("2026");
        var before = new SessionTokenCodec([oldKey]);
        var during = new SessionTokenCodec([newKey, oldKey]);
        var after = new SessionTokenCodec([newKey]);
        var oldToken = before.Create();

        Assert.True(during.TryParse(oldToken.Value, out var parsed));
        Assert.Equal(oldToken.SessionId, parsed.SessionId);
        Assert.StartsWith("sg1_2026_", during.Create().Value, StringComparison.Ordinal);
        Assert.False(after.TryParse(oldToken.Value, out _));
        Assert.True(after.TryParse(during.Create().Value, out _));
    }

    [Fact]
    public void The_rolling_key_rotation_of_the_docs_never_rejects_a_token_while_processes_disagree()
    {
        // docs/keys.md: add the new key second everywhere, then promote it, then drop the old one; processes move one at a time.
        var oldKey = SessionTokenKey.Generate("k1");
        var newKey = SessionTokenKey.Generate("k2");
        SessionTokenCodec[] steps = [new([oldKey]), new([oldKey, newKey]), new([newKey, oldKey])];

        // During each roll-out, processes on the step before and the step after sign and check each other's tokens.
        for (var i = 1; i < steps.Length; i++)
        {
            foreach (var (signer, checker) in new[] { (steps[i - 1], steps[i]), (steps[i], steps[i - 1]) })
            {
                Assert.True(checker.TryParse(signer.Create().Value, out _), $"step {i}: a token was rejected while processes disagreed");
            }
        }

        // Putting the new key first straight away would not be safe: a process still on the old list rejects its tokens.
        Assert.False(steps[0].TryParse(steps[2].Create().Value, out _));
    }

    [Fact]
    public void Keys_are_read_from_configuration_newest_first()
    {
        var secret1 = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        var secret2 = Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(40));
        var keys = SessionTokenCodec.ParseKeys($"new:{secret2}, old:{secret1}", "SessionStore:TokenKeys");
        Assert.Equal(["new", "old"], keys.Select(k => k.Id));
        Assert.Equal("new", new SessionTokenCodec(keys).CurrentKeyId);
    }

    [Theory]
    [InlineData("")]
    [InlineData("nokey")]
    [InlineData("k1:c2hvcnQ=")]
    [InlineData("bad id!:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")]
    [InlineData("k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")]
    [InlineData("k1:not base64 at all, really not")]
    public void Bad_key_configuration_names_the_setting_and_never_echoes_a_secret(string configuration)
    {
        var failure = Assert.Throws<OptionsValidationException>(() => SessionTokenCodec.ParseKeys(configuration, "SessionStore:TokenKeys"));
        Assert.Contains("SessionStore:TokenKeys", failure.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("AAAAAAAA", failure.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("c2hvcnQ", failure.Message, StringComparison.Ordinal);
    }
}
