using System.Reflection;
using System.Security.Cryptography;
using Microsoft.Net.Http.Headers;

namespace PushService.Gateway.Sdk;

/// <summary>
/// A file built into the gateway (an embedded resource), served with a strong ETag from its content: the browser client
/// at <c>/sdk/push.js</c> and the web console's files. A request that already holds this content gets 304.
/// </summary>
internal sealed class EmbeddedFile
{
    private EmbeddedFile(byte[] content, string contentType)
    {
        Content = content;
        ContentType = contentType;
        ETag = new EntityTagHeaderValue($"\"{Convert.ToHexStringLower(SHA256.HashData(content))[..16]}\"");
    }

    public byte[] Content { get; }

    public string ContentType { get; }

    public EntityTagHeaderValue ETag { get; }

    /// <summary>The resource named <paramref name="resource"/> in the gateway's assembly; the build must have embedded it.</summary>
    public static EmbeddedFile Load(string resource, string contentType)
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream(resource)
            ?? throw new InvalidOperationException($"The gateway was built without {resource}.");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return new EmbeddedFile(copy.ToArray(), contentType);
    }

    /// <summary>Answers with the file (or 304), its ETag, <paramref name="cacheControl"/> and <c>nosniff</c>.</summary>
    public IResult Serve(HttpContext context, CacheControlHeaderValue cacheControl)
    {
        var headers = context.Response.GetTypedHeaders();
        headers.ETag = ETag;
        headers.CacheControl = cacheControl;
        context.Response.Headers.XContentTypeOptions = "nosniff";
        return context.Request.GetTypedHeaders().IfNoneMatch.Any(tag => tag.Compare(ETag, useStrongComparison: false))
            ? Results.StatusCode(StatusCodes.Status304NotModified)
            : Results.Bytes(Content, ContentType);
    }
}
