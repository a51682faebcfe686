namespace PushService.Gateway.Configuration;

/// <summary>The scopes of REST API keys.</summary>
public static class ApiScopes
{
    /// <summary>Publish and broadcast.</summary>
    public const string Publish = "publish";

    /// <summary>Read history, presence, channels and node info.</summary>
    public const string Read = "read";

    /// <summary>Everything, including disconnecting users.</summary>
    public const string Admin = "admin";
}
