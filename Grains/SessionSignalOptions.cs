namespace SessionGrains;

/// <summary>
/// How sessions react to client and activity signals (section <c>SessionStore:Signals</c>). Defaults warn
/// only: mobile clients change networks, browsers update their User-Agent, and a single page can fire many
/// requests; a deployment tightens what fits its users.
/// </summary>
public sealed class SessionSignalOptions
{
    /// <summary>A request from another network than the last one seen. Default <see cref="SignalPolicy.Warn"/>.</summary>
    public SignalPolicy IpChange { get; set; } = SignalPolicy.Warn;

    /// <summary>A request with another User-Agent than the last one seen. Default <see cref="SignalPolicy.Warn"/>; <see cref="SignalPolicy.Revoke"/> is the strict choice.</summary>
    public SignalPolicy UserAgentChange { get; set; } = SignalPolicy.Warn;

    /// <summary>IPv4 addresses in the same /N are one network. Default 24.</summary>
    public int IPv4PrefixLength { get; set; } = 24;

    /// <summary>IPv6 addresses in the same /N are one network. Default 64.</summary>
    public int IPv6PrefixLength { get; set; } = 64;

    /// <summary>Validations of one session within <see cref="BurstWindow"/> above which <see cref="SessionSignals.RequestBurst"/> is raised. Default 50.</summary>
    public int BurstThreshold { get; set; } = 50;

    /// <summary>Window of <see cref="BurstThreshold"/>. Default 10 seconds.</summary>
    public TimeSpan BurstWindow { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>What a request burst does: warn, throttle (HTTP 429 until the window has room) or revoke. Default <see cref="SignalPolicy.Warn"/>.</summary>
    public SignalPolicy Burst { get; set; } = SignalPolicy.Warn;

    /// <summary>Distinct networks within <see cref="NetworksWindow"/> above which <see cref="SessionSignals.ManyNetworks"/> is raised. Default 5.</summary>
    public int NetworksThreshold { get; set; } = 5;

    /// <summary>Window of <see cref="NetworksThreshold"/>. Default one minute.</summary>
    public TimeSpan NetworksWindow { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>What many networks do. Default <see cref="SignalPolicy.Warn"/>.</summary>
    public SignalPolicy ManyNetworks { get; set; } = SignalPolicy.Warn;

    /// <summary>Sessions created for one user within <see cref="CreationBurstWindow"/> above which the user is flagged (credential stuffing). Default 20.</summary>
    public int CreationBurstThreshold { get; set; } = 20;

    /// <summary>Window of <see cref="CreationBurstThreshold"/>. Default one minute.</summary>
    public TimeSpan CreationBurstWindow { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>What a creation burst does: warn, or throttle (refuse new sessions for <see cref="CreationCooldown"/>). Default <see cref="SignalPolicy.Warn"/>.</summary>
    public SignalPolicy CreationBurst { get; set; } = SignalPolicy.Warn;

    /// <summary>How long a throttled user gets no new session. Default 5 minutes.</summary>
    public TimeSpan CreationCooldown { get; set; } = TimeSpan.FromMinutes(5);

    internal IEnumerable<string> Validate(string section)
    {
        if (IPv4PrefixLength is < 0 or > 32 || IPv6PrefixLength is < 0 or > 128)
        {
            yield return $"{section}:IPv4PrefixLength must be 0-32 and {section}:IPv6PrefixLength 0-128.";
        }

        if (BurstThreshold < 1 || NetworksThreshold < 1 || CreationBurstThreshold < 1)
        {
            yield return $"{section}:BurstThreshold, NetworksThreshold and CreationBurstThreshold must be at least 1.";
        }

        if (BurstWindow <= TimeSpan.Zero || NetworksWindow <= TimeSpan.Zero || CreationBurstWindow <= TimeSpan.Zero || CreationCooldown < TimeSpan.Zero)
        {
            yield return $"{section}: the signal windows must be positive and CreationCooldown not negative.";
        }

        if (!Enum.IsDefined(IpChange) || IpChange == SignalPolicy.Throttle || !Enum.IsDefined(UserAgentChange) || UserAgentChange == SignalPolicy.Throttle
            || !Enum.IsDefined(ManyNetworks) || ManyNetworks == SignalPolicy.Throttle)
        {
            yield return $"{section}:IpChange, UserAgentChange and ManyNetworks must be Ignore, Warn or Revoke.";
        }

        if (!Enum.IsDefined(Burst))
        {
            yield return $"{section}:Burst must be Ignore, Warn, Throttle or Revoke.";
        }

        if (CreationBurst is not (SignalPolicy.Ignore or SignalPolicy.Warn or SignalPolicy.Throttle))
        {
            yield return $"{section}:CreationBurst must be Ignore, Warn or Throttle.";
        }
    }
}
