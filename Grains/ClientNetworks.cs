using System.Net;

namespace SessionGrains;

/// <summary>Which network an address belongs to, so a client moving inside its network is not flagged.</summary>
internal static class ClientNetworks
{
    /// <summary>The address masked to its network prefix (IPv4-mapped IPv6 counts as IPv4); unparseable text stands for itself.</summary>
    public static string Of(string address, int ipv4PrefixLength, int ipv6PrefixLength)
    {
        if (!IPAddress.TryParse(address, out var ip))
        {
            return address;
        }

        if (ip.IsIPv4MappedToIPv6)
        {
            ip = ip.MapToIPv4();
        }

        var prefix = ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? ipv4PrefixLength : ipv6PrefixLength;
        var bytes = ip.GetAddressBytes();
        for (var i = 0; i < bytes.Length; i++)
        {
            var keep = Math.Clamp(prefix - (i * 8), 0, 8);
            bytes[i] &= (byte)(0xFF << (8 - keep));
        }

        return $"{new IPAddress(bytes)}/{prefix}";
    }
}
