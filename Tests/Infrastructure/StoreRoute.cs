using System.Collections.Immutable;
using System.Net.Http.Json;
using SessionGrains.HistoryFrontend;

namespace SessionGrains.Tests.Infrastructure;

/// <summary>One way to reach the store: a frontend process over its loopback routes, or an Orleans client in the test process.</summary>
public abstract class StoreRoute(string name)
{
    public string Name { get; } = name;

    public abstract Task<SessionAnswer> ValidateAsync(string token, CancellationToken ct);

    public abstract Task<SessionAnswer> UpdateAsync(string token, long? expectedVersion, string value, CancellationToken ct);

    public abstract Task<CreatedAnswer> RotateAsync(string token, CancellationToken ct);

    public abstract Task<CountAnswer> DeleteAsync(string token, CancellationToken ct);

    public abstract Task<CountAnswer> RevokeAsync(string userId, string sessionId, CancellationToken ct);

    public abstract Task<CountAnswer> DeleteAllAsync(string userId, string? exceptSessionId, CancellationToken ct);

    public abstract Task<CreatedAnswer> CreateAsync(string userId, CancellationToken ct);

    public abstract Task<CountAnswer> CountAsync(string userId, CancellationToken ct);

    public abstract Task<ListAnswer> ListAsync(string userId, CancellationToken ct);
}

/// <summary>The routes of a <see cref="FrontendProcess"/>; a non-success status is an exception (an indeterminate call).</summary>
public sealed class FrontendRoute(FrontendProcess frontend) : StoreRoute($"frontend{frontend.Index}")
{
    public FrontendProcess Frontend { get; } = frontend;

    public override Task<SessionAnswer> ValidateAsync(string token, CancellationToken ct) => PostAsync<SessionAnswer>("/validate", new TokenRequest(token), ct);

    public override Task<SessionAnswer> UpdateAsync(string token, long? expectedVersion, string value, CancellationToken ct) =>
        PostAsync<SessionAnswer>("/update", new UpdateRequest(token, expectedVersion, value), ct);

    public override Task<CreatedAnswer> RotateAsync(string token, CancellationToken ct) => PostAsync<CreatedAnswer>("/rotate", new TokenRequest(token), ct);

    public override Task<CountAnswer> DeleteAsync(string token, CancellationToken ct) => PostAsync<CountAnswer>("/delete", new TokenRequest(token), ct);

    public override Task<CountAnswer> RevokeAsync(string userId, string sessionId, CancellationToken ct) => PostAsync<CountAnswer>("/revoke", new UserRequest(userId, sessionId), ct);

    public override Task<CountAnswer> DeleteAllAsync(string userId, string? exceptSessionId, CancellationToken ct) =>
        PostAsync<CountAnswer>("/delete-all", new UserRequest(userId, exceptSessionId), ct);

    public override Task<CreatedAnswer> CreateAsync(string userId, CancellationToken ct) => PostAsync<CreatedAnswer>("/create", new UserRequest(userId), ct);

    public override Task<CountAnswer> CountAsync(string userId, CancellationToken ct) => PostAsync<CountAnswer>("/count", new UserRequest(userId), ct);

    public override Task<ListAnswer> ListAsync(string userId, CancellationToken ct) => PostAsync<ListAnswer>("/list", new UserRequest(userId), ct);

    private async Task<T> PostAsync<T>(string path, object body, CancellationToken ct)
    {
        using var response = await Frontend.Http.PostAsJsonAsync(path, body, ct);
        if (!response.IsSuccessStatusCode)
        {
            // The frontend answers a failed store call with the exception's type only.
            throw new HttpRequestException($"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync(ct)}");
        }

        return await response.Content.ReadFromJsonAsync<T>(ct) ?? throw new HttpRequestException("An empty answer.");
    }
}

/// <summary><see cref="ISessionStore"/> called in the test process (the writer's own Orleans client).</summary>
public sealed class ClientRoute(string name, ISessionStore store) : StoreRoute(name)
{
    public override async Task<SessionAnswer> ValidateAsync(string token, CancellationToken ct) =>
        await store.ValidateAsync(token, cancellationToken: ct) is { } session ? new SessionAnswer(true, session.Version, session.SessionId) : new SessionAnswer(false);

    public override async Task<SessionAnswer> UpdateAsync(string token, long? expectedVersion, string value, CancellationToken ct)
    {
        try
        {
            var change = new SessionUpdate { Metadata = ImmutableDictionary<string, string?>.Empty.Add("n", value) };
            return await store.UpdateAsync(token, change, expectedVersion, ct) is { } session
                ? new SessionAnswer(true, session.Version, session.SessionId)
                : new SessionAnswer(false);
        }
        catch (SessionVersionConflictException conflict)
        {
            return new SessionAnswer(true, conflict.ActualVersion, Conflict: true);
        }
    }

    public override async Task<CreatedAnswer> RotateAsync(string token, CancellationToken ct) =>
        await store.RotateAsync(token, TimeSpan.Zero, ct) is { } rotated
            ? new CreatedAnswer(true, rotated.Token.Value, rotated.Session.SessionId, rotated.Session.Version, rotated.Session.CreatedAt)
            : new CreatedAnswer(false);

    public override async Task<CountAnswer> DeleteAsync(string token, CancellationToken ct) => new(await store.DeleteAsync(token, ct));

    public override async Task<CountAnswer> RevokeAsync(string userId, string sessionId, CancellationToken ct) => new(await store.RevokeAsync(userId, sessionId, ct));

    public override async Task<CountAnswer> DeleteAllAsync(string userId, string? exceptSessionId, CancellationToken ct) =>
        new(true, await store.DeleteAllForUserAsync(userId, exceptSessionId, ct));

    public override async Task<CreatedAnswer> CreateAsync(string userId, CancellationToken ct)
    {
        var created = await store.CreateAsync(userId, cancellationToken: ct);
        return new CreatedAnswer(true, created.Token.Value, created.Session.SessionId, created.Session.Version, created.Session.CreatedAt);
    }

    public override async Task<CountAnswer> CountAsync(string userId, CancellationToken ct) => new(false, await store.CountForUserAsync(userId, ct));

    public override async Task<ListAnswer> ListAsync(string userId, CancellationToken ct) =>
        new((await store.ListByUserAsync(userId, 1000, cancellationToken: ct)).Sessions.Select(s => s.SessionId).ToList());
}
