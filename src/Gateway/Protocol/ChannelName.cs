namespace PushService.Gateway.Protocol;

/// <summary>Channel name rules of the contract (section 3).</summary>
public static class ChannelName
{
    /// <summary>The longest channel name.</summary>
    public const int MaxLength = 255;

    /// <summary>
    /// True for 1 to 255 characters of <c>A-Z a-z 0-9 _ - : . @ / = #</c>, plus <c>,</c> in the user list after a <c>#</c>
    /// (the contract's own example, <c>dm#42,77</c>, needs it).
    /// </summary>
    public static bool IsValid(string? name)
    {
        if (string.IsNullOrEmpty(name) || name.Length > MaxLength)
        {
            return false;
        }

        var afterHash = false;
        foreach (var c in name)
        {
            if (c == '#')
            {
                afterHash = true;
            }
            else if (!IsAllowed(c) && !(afterHash && c == ','))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// The users a user-limited channel (<c>notifications#42</c>, <c>dm#42,77</c>) is for, or an empty span when
    /// the channel is open to anyone the namespace allows.
    /// </summary>
    public static bool TryGetAllowedUsers(string name, out ReadOnlySpan<char> users)
    {
        var hash = name.LastIndexOf('#');
        if (hash < 0)
        {
            users = default;
            return false;
        }

        users = name.AsSpan(hash + 1);
        return true;
    }

    /// <summary>True when <paramref name="user"/> may use the channel as far as its user limit goes.</summary>
    public static bool AllowsUser(string name, string user)
    {
        if (!TryGetAllowedUsers(name, out var users))
        {
            return true;
        }

        if (user.Length == 0)
        {
            return false;
        }

        foreach (var range in users.Split(','))
        {
            if (users[range].SequenceEqual(user))
            {
                return true;
            }
        }

        return false;
    }

    private static bool IsAllowed(char c) =>
        c is >= 'a' and <= 'z' or >= 'A' and <= 'Z' or >= '0' and <= '9' or '_' or '-' or ':' or '.' or '@' or '/' or '=' or '#';
}
