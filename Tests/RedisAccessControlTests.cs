using Microsoft.Extensions.DependencyInjection;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using SessionGrains.Tests.Infrastructure;
using StackExchange.Redis;

namespace SessionGrains.Tests;

/// <summary>Redis with a password, with a restricted ACL user, and over TLS: the store works; wrong credentials stop start-up clearly.</summary>
public sealed class RedisAccessControlTests
{
    private const string ServiceId = "sgacl";
    private const string Password = "test-Pa55-word-0123";

    /// <summary>The ACL the README recommends: only the service's keys, only the commands the providers use.</summary>
    private static readonly string[] RestrictedUser =
    [
        "sessiongrains", "on", ">" + Password, "resetkeys", $"~{ServiceId}/*", "resetchannels", "&__Booksleeve_MasterChanged",
        "nocommands", "+@connection", "+@read", "+@write", "+@scripting", "-@dangerous", "+info", "+client|setname", "+subscribe", "+publish", $"&{ServiceId}/events",
    ];

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task The_store_works_on_redis_with_a_password()
    {
        await using var redis = await StartAsync(new RedisServerSettings(Password: Password));
        await AssertStoreWorksAsync(redis, redis.ConnectionString);
    }

    [Fact]
    public async Task The_store_works_as_an_acl_user_limited_to_its_keys_and_commands()
    {
        await using var redis = await StartAsync(new RedisServerSettings(Password: "admin-" + Password, AclSetUser: RestrictedUser));
        await AssertStoreWorksAsync(redis, $"127.0.0.1:{redis.Port},user=sessiongrains,password={Password}");

        // The user really is restricted: it cannot touch other keys or flush the database.
        await using var user = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync($"127.0.0.1:{redis.Port},user=sessiongrains,password={Password}");
        await Assert.ThrowsAsync<StackExchange.Redis.RedisServerException>(() => user.GetDatabase().StringSetAsync("other/key", "x"));
        await Assert.ThrowsAsync<StackExchange.Redis.RedisServerException>(() => user.GetDatabase().ExecuteAsync("FLUSHDB"));
    }

    [Fact]
    public async Task The_store_works_over_tls_with_a_private_ca()
    {
        await using var redis = await StartAsync(new RedisServerSettings(Password: Password, Tls: true));
        await AssertStoreWorksAsync(redis, redis.ConnectionString, ("SessionStore:RedisCaCertificate", redis.CaCertificatePath));
    }

    [Fact]
    public async Task A_wrong_password_stops_start_up_with_a_clear_message_that_hides_the_password()
    {
        await using var redis = await StartAsync(new RedisServerSettings(Password: Password));
        using var factory = SiloApiFactory.Create(redis, ("SessionStore:Redis", $"127.0.0.1:{redis.Port},password=wrong-secret-42"));

        var failure = Assert.ThrowsAny<Exception>(() => factory.CreateClient());

        var message = Flatten(failure);
        Assert.Contains("SessionStore:Redis", message, StringComparison.Ordinal);
        Assert.Contains("authentication failed", message, StringComparison.Ordinal);
        Assert.DoesNotContain("wrong-secret-42", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Tls_without_trusting_the_ca_stops_start_up_with_a_clear_message()
    {
        await using var redis = await StartAsync(new RedisServerSettings(Tls: true));
        using var factory = SiloApiFactory.Create(redis);

        var failure = Assert.ThrowsAny<Exception>(() => factory.CreateClient());

        Assert.Contains("SessionStore:Redis: cannot use Redis", Flatten(failure), StringComparison.Ordinal);
    }

    [Fact]
    public void A_tls_handshake_that_broke_off_is_waited_out_but_a_refusal_is_final()
    {
        // StackExchange.Redis calls all three an authentication failure; only the first may pass (seen in CI: the
        // handshake timed out on the loaded machine and start-up gave up as if the credentials were wrong).
        Assert.True(SessionGrains.Silo.RedisStartupCheck.IsStillStarting(new RedisConnectionException(
            ConnectionFailureType.AuthenticationFailure, "handshake", new IOException("Unable to read data from the transport connection: Operation canceled."))));
        Assert.False(SessionGrains.Silo.RedisStartupCheck.IsStillStarting(new RedisConnectionException(
            ConnectionFailureType.AuthenticationFailure, "untrusted", new System.Security.Authentication.AuthenticationException("The remote certificate is invalid."))));
        Assert.False(SessionGrains.Silo.RedisStartupCheck.IsStillStarting(new RedisConnectionException(ConnectionFailureType.AuthenticationFailure, "WRONGPASS")));
        Assert.True(SessionGrains.Silo.RedisStartupCheck.IsStillStarting(new RedisConnectionException(ConnectionFailureType.UnableToConnect, "not up yet")));
    }

    [Fact]
    public async Task A_silo_started_while_redis_loads_its_append_only_file_waits_for_it_and_then_serves()
    {
        // key-load-delay (µs per key, a Redis testing knob) makes reading 6,000 keys back take seconds,
        // as a production-sized AOF does: the server answers LOADING to everything until it is done.
        await using var redis = await StartAsync(new RedisServerSettings(AppendOnly: true, ExtraArguments: ["--key-load-delay", "500"]));
        var batch = redis.Database.CreateBatch();
        var writes = Enumerable.Range(0, 6_000).Select(i => batch.StringSetAsync($"filler/{i}", "x")).ToArray();
        batch.Execute();
        await Task.WhenAll(writes);
        await Task.Delay(TimeSpan.FromSeconds(1.5), Ct); // appendfsync everysec

        var restarted = redis.RestartAsync(wipeData: false);
        await using var factory = SiloApiFactory.Create(redis);
        using var http = factory.CreateClient(); // the silo starts while Redis is still loading
        await restarted;

        Assert.Equal("x", (string?)await redis.Database.StringGetAsync("filler/5999"));
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/health", Ct)).StatusCode);
        var created = await http.PostAsJsonAsync("/sessions", new { userId = "after-loading" }, Ct);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
    }

    private static async Task<RedisServer> StartAsync(RedisServerSettings settings)
    {
        var redis = new RedisServer(settings);
        await redis.InitializeAsync();
        return redis;
    }

    private static async Task AssertStoreWorksAsync(RedisServer redis, string connectionString, params (string, string?)[] extra)
    {
        await using var factory = SiloApiFactory.Create(redis, [("SessionStore:Redis", connectionString), ("SessionStore:ServiceId", ServiceId), .. extra]);
        using var http = factory.CreateClient();
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/health", Ct)).StatusCode);

        var created = JsonDocument.Parse(await (await http.PostAsJsonAsync("/sessions", new { userId = "acl-user" }, Ct)).Content.ReadAsStringAsync(Ct)).RootElement;
        using var validate = new HttpRequestMessage(HttpMethod.Get, "/sessions/current");
        validate.Headers.Add("X-Session-Token", created.GetProperty("token").GetString());
        Assert.Equal(HttpStatusCode.OK, (await http.SendAsync(validate, Ct)).StatusCode);
        var listed = JsonDocument.Parse(await http.GetStringAsync("/users/acl-user/sessions", Ct)).RootElement;
        Assert.Equal(1, listed.GetProperty("sessions").GetArrayLength());
        Assert.Equal(1, JsonDocument.Parse(await (await http.PostAsJsonAsync("/users/acl-user/sessions/revoke-all", new { }, Ct)).Content.ReadAsStringAsync(Ct)).RootElement.GetProperty("ended").GetInt32());

        // The session events went to the stream (in the index's script: XADD and PUBLISH) and read back from it.
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(15));
        var kinds = new List<SessionEventKind>();
        await foreach (var e in factory.Services.GetRequiredService<ISessionStore>().SubscribeAsync("acl-user", SessionEvent.Beginning, timeout.Token))
        {
            kinds.Add(e.Kind);
            if (kinds.Count == 2)
            {
                break;
            }
        }

        Assert.Equal([SessionEventKind.Created, SessionEventKind.Ended], kinds);

        // Written where the admin can see it: the keys of this service.
        Assert.True(await redis.Database.KeyExistsAsync($"{ServiceId}/members/{factory.ClusterId}"));
    }

    private static string Flatten(Exception exception)
    {
        var parts = new List<string>();
        for (Exception? e = exception; e is not null; e = e.InnerException)
        {
            parts.Add(e.Message);
        }

        return string.Join(" | ", parts);
    }
}
