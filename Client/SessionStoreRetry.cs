using Orleans.Runtime;
using Orleans.Runtime.Messaging;
using Polly;
using Polly.Retry;

namespace SessionGrains;

/// <summary>
/// The client's retry policy for transient cluster failures (a silo that just died or restarted, a gateway
/// that is busy or gone): up to 4 retries with exponential back-off from 100 ms and jitter, about 2 seconds
/// in all, then <see cref="SessionStoreUnavailableException"/>. A call that timed out (no answer within the
/// response timeout) is retried once if its answer does not depend on whether it already ran (validations, reads,
/// creates); a change that ends, rotates or updates a session is not, since its first attempt may have been applied
/// and the retry would report what that attempt left ("not found", a version conflict) as the outcome. Storage
/// outages are not retried: they fail fast, as <see cref="SessionStoreUnavailableException"/> from the silo.
/// </summary>
/// <remarks>
/// Retrying is safe for every operation: creates carry a client-made session id, so a create whose answer
/// was lost is recognised by the user index instead of being done twice; reads, ends and metadata merges
/// are idempotent. An update with an expected version that was applied before its answer was lost reports
/// a version conflict on the retry. A store inside a silo runs under it too: its calls to grains on a silo
/// that just died fail the same way until membership moves them.
/// </remarks>
internal static class SessionStoreRetry
{
    public static readonly TimeSpan RetryAfter = TimeSpan.FromSeconds(2);

    public static ResiliencePipeline Pipeline { get; } = Build(retryTimeouts: true);

    /// <summary>For changes whose answer says what they found: a timed-out attempt may have been applied.</summary>
    public static ResiliencePipeline ChangePipeline { get; } = Build(retryTimeouts: false);

    private static ResiliencePipeline Build(bool retryTimeouts) => new ResiliencePipelineBuilder()
        .AddRetry(new RetryStrategyOptions
        {
            ShouldHandle = args => ValueTask.FromResult(args.Outcome.Exception is { } exception
                && IsTransient(exception)
                && (exception is not TimeoutException || (retryTimeouts && args.AttemptNumber == 0))),
            MaxRetryAttempts = 4,
            BackoffType = DelayBackoffType.Exponential,
            Delay = TimeSpan.FromMilliseconds(100),
            MaxDelay = TimeSpan.FromSeconds(1),
            UseJitter = true,
        })
        .Build();

    public static bool IsTransient(Exception exception) => exception is
        SiloUnavailableException or OrleansMessageRejectionException or ConnectionFailedException
        or GatewayTooBusyException or TimeoutException or Orleans.Networking.Shared.SocketConnectionException;

    /// <summary>
    /// Runs a grain call under the policy; what stays transient after it becomes <see cref="SessionStoreUnavailableException"/>.
    /// A failure that leaves here is recorded on the store operation's activity (<see cref="SessionStoreActivities.Failed"/>).
    /// </summary>
    public static async Task<T> ExecuteAsync<T>(Func<Task<T>> call, CancellationToken cancellationToken, bool isChange = false)
    {
        try
        {
            try
            {
                return await (isChange ? ChangePipeline : Pipeline).ExecuteAsync(
                    static async (state, ct) => await state.call().WaitAsync(ct).ConfigureAwait(false),
                    (call, cancellationToken),
                    cancellationToken).ConfigureAwait(false);
            }
            catch (Exception exception) when (IsTransient(exception))
            {
                throw new SessionStoreUnavailableException(
                    $"The session cluster did not answer ({exception.GetType().Name}) after retries.", RetryAfter, exception);
            }
            catch (OrleansException exception) when (StorageFailure(exception) is { } unavailable)
            {
                // A grain whose state could not be read on activation: Orleans wraps the storage error.
                throw unavailable;
            }
            catch (Orleans.Storage.InconsistentStateException exception)
            {
                // Writes kept conflicting while storage changed hands (a failover): nothing was applied; try again.
                throw new SessionStoreUnavailableException("The session storage is changing hands; try again.", TimeSpan.FromSeconds(1), exception);
            }
        }
        catch (Exception exception)
        {
            // One place for every operation's failures, as the caller sees them (after the translation above).
            SessionStoreActivities.Failed(exception);
            throw;
        }
    }

    /// <summary>A change retried after a failure, whose retry found nothing to change: the first attempt may have changed it.</summary>
    public static SessionStoreUnavailableException MayHaveBeenApplied()
    {
        var exception = new SessionStoreUnavailableException(
            "The change may or may not have been applied: an attempt failed on its way back and the retry found nothing to change. Read the session to see where it stands.",
            TimeSpan.FromSeconds(1));
        SessionStoreActivities.Failed(exception);
        return exception;
    }

    private static SessionStoreUnavailableException? StorageFailure(Exception exception)
    {
        for (var inner = exception.InnerException; inner is not null; inner = inner.InnerException)
        {
            if (inner is SessionStoreUnavailableException unavailable)
            {
                return unavailable;
            }
        }

        return null;
    }
}
