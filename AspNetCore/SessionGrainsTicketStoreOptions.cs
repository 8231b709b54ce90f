namespace SessionGrains;

/// <summary>Options of <see cref="SessionGrainsTicketStore"/> (set with <c>AddSessionGrainsTicketStore(o => ...)</c>).</summary>
public sealed class SessionGrainsTicketStoreOptions
{
    /// <summary>
    /// The absolute lifetime of a session behind a sliding cookie, which cookie authentication itself never ends while
    /// it is used. Null (the default): the cluster's <c>SessionStore:DefaultAbsoluteTimeout</c> (12 hours unless set).
    /// Set it to let "remember me" cookies outlive that, up to the cluster's <c>SessionStore:MaxAbsoluteTimeout</c>.
    /// </summary>
    public TimeSpan? AbsoluteTimeout { get; set; }
}
