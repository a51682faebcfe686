using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.OpenApi;
using Microsoft.OpenApi.Reader;
using PushService.FunctionalTests.Infrastructure;

namespace PushService.FunctionalTests;

/// <summary>
/// The REST API's OpenAPI document (<c>/openapi/v1.json</c>): valid OpenAPI, describing exactly the REST endpoints the
/// gateway maps, each with its security, problem answers and an example, and with schemas that match what the endpoints
/// really answer. The reference page (<c>/docs</c>) is served in Development only.
/// </summary>
public sealed class OpenApiTests
{
    private const string AdminKey = "openapi-admin-key-0123456789";

    private static readonly Dictionary<string, string?> Settings = new()
    {
        ["PushService:Api:Keys:0:Key"] = AdminKey,
        ["PushService:Api:Keys:0:Scopes:0"] = "admin",
        ["PushService:Namespaces:room:Presence"] = "true",
    };

    [Fact]
    public async Task TheDocument_IsValidOpenApi_AndDescribesExactlyTheMappedRestEndpoints()
    {
        await using var host = GatewayHost.Start(Settings);
        var text = await host.Http.GetStringAsync("/openapi/v1.json");

        // Read back by OpenAPI.NET with its default validation rules: no reading or validation error.
        var read = OpenApiDocument.Parse(text, "json", new OpenApiReaderSettings());
        Assert.Empty(read.Diagnostic?.Errors ?? []);
        var document = read.Document!;
        Assert.StartsWith("3.1", read.Diagnostic!.SpecificationVersion.ToString().Replace("OpenApi", "", StringComparison.Ordinal).Replace('_', '.'), StringComparison.Ordinal);
        Assert.Equal("PushService REST API", document.Info.Title);

        // What the gateway maps: every route under /api/v1 and the probes, by method.
        var mapped = host.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Where(e => e.RoutePattern.RawText is { } raw && (raw.StartsWith("/api/v1/", StringComparison.Ordinal) || raw is "/healthz" or "/readyz"))
            .SelectMany(e => e.Metadata.GetMetadata<HttpMethodMetadata>()!.HttpMethods.Select(m => $"{m} {e.RoutePattern.RawText}"))
            .Order().ToList();
        var documented = document.Paths.SelectMany(p => p.Value.Operations!.Select(o => $"{o.Key.Method.ToUpperInvariant()} {p.Key}")).Order().ToList();
        Assert.Equal(10, mapped.Count);
        Assert.Equal(mapped, documented);

        foreach (var (path, item) in document.Paths.Where(p => p.Key.StartsWith("/api/v1/", StringComparison.Ordinal)))
        {
            foreach (var (method, operation) in item.Operations!)
            {
                var name = $"{method} {path}";
                Assert.False(string.IsNullOrEmpty(operation.OperationId), $"{name} has no operationId");
                Assert.False(string.IsNullOrEmpty(operation.Summary), $"{name} has no summary");
                Assert.Contains("scope", operation.Description, StringComparison.Ordinal);

                // The API key, and the problems every caller can meet.
                var requirement = Assert.Single(operation.Security!);
                Assert.Equal(ApiKeyScheme, Assert.Single(requirement.Keys).Reference.Id);
                foreach (var status in new[] { "401", "403" })
                {
                    Assert.True(operation.Responses!.TryGetValue(status, out var problem), $"{name} does not document {status}");
                    Assert.Contains("application/problem+json", problem.Content!.Keys);
                }

                // The answer, with a schema and an example that fits it.
                var ok = operation.Responses!["200"].Content!["application/json"];
                Assert.NotNull(ok.Schema);
                Assert.NotNull(ok.Example);
                Assert.Empty(MissingRequired(ok.Schema!, ok.Example!));
                if (operation.RequestBody is { } body)
                {
                    Assert.NotNull(body.Content!["application/json"].Example);
                }
            }
        }

        var scheme = document.Components!.SecuritySchemes![ApiKeyScheme];
        Assert.Equal(SecuritySchemeType.Http, scheme.Type);
        Assert.Equal("bearer", scheme.Scheme);
    }

    [Fact]
    public async Task DocumentedSchemas_MatchWhatTheEndpointsAnswer()
    {
        await using var host = GatewayHost.Start(Settings);
        var document = OpenApiDocument.Parse(await host.Http.GetStringAsync("/openapi/v1.json"), "json", new OpenApiReaderSettings()).Document!;
        await using var subscriber = await host.ConnectAsync();
        await subscriber.ResultAsync(new { op = "subscribe", channel = "room:a" });

        async Task<JsonNode> Call(HttpMethod method, string path, string? body = null)
        {
            using var request = new HttpRequestMessage(method, path);
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", AdminKey);
            if (body is not null)
            {
                request.Content = new StringContent(body, Encoding.UTF8, "application/json");
            }

            using var response = await host.Http.SendAsync(request);
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{method} {path}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
            Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
            return JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        }

        var answers = new Dictionary<string, JsonNode>
        {
            ["POST /api/v1/channels/{channel}/messages"] = await Call(HttpMethod.Post, "/api/v1/channels/room:a/messages", """{"data":{"n":1},"idempotencyKey":"k1"}"""),
            ["POST /api/v1/broadcast"] = await Call(HttpMethod.Post, "/api/v1/broadcast", """{"channels":["room:a","room:b"],"data":2}"""),
            ["GET /api/v1/channels/{channel}/history"] = await Call(HttpMethod.Get, "/api/v1/channels/room:a/history?limit=10"),
            ["GET /api/v1/channels/{channel}/presence"] = await Call(HttpMethod.Get, "/api/v1/channels/room:a/presence"),
            ["GET /api/v1/channels"] = await Call(HttpMethod.Get, "/api/v1/channels"),
            ["GET /api/v1/info"] = await Call(HttpMethod.Get, "/api/v1/info"),
            ["POST /api/v1/users/{user}/disconnect"] = await Call(HttpMethod.Post, "/api/v1/users/nobody/disconnect", """{"reconnect":true}"""),
            ["GET /api/v1/admin/activity"] = await Call(HttpMethod.Get, "/api/v1/admin/activity"),
        };

        foreach (var (name, answer) in answers)
        {
            var parts = name.Split(' ');
            var operation = document.Paths[parts[1]].Operations![new HttpMethod(parts[0])];
            var schema = operation.Responses!["200"].Content!["application/json"].Schema!;

            // Every property the document requires is there, and every property sent is documented, all the way down
            // through the arrays of objects (the history's messages, the info's nodes, ...).
            Assert.Empty(MissingRequired(schema, answer).Select(m => $"{name}: {m}"));
            Assert.Empty(Undocumented(schema, answer).Select(m => $"{name}: {m}"));
        }

        // The answers are non-trivial, so the walk above had something to walk.
        Assert.Equal(2, answers["GET /api/v1/channels/{channel}/history"]["messages"]!.AsArray().Count);
        Assert.Single(answers["GET /api/v1/channels/{channel}/presence"]["clients"]!.AsArray());
        Assert.Single(answers["GET /api/v1/info"]["nodes"]!.AsArray());
    }

    [Fact]
    public async Task DocumentingTheBodies_ChangesNoAnswer_WhateverTheContentType()
    {
        await using var host = GatewayHost.Start(Settings);

        async Task<HttpStatusCode> Send(string path, HttpContent? content)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = content };
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", AdminKey);
            using var response = await host.Http.SendAsync(request);
            return response.StatusCode;
        }

        // The API has always read its bodies as JSON whatever the Content-Type says, and the disconnect body may be absent.
        Assert.Equal(HttpStatusCode.OK, await Send("/api/v1/channels/room:a/messages", new StringContent("""{"data":1}""", Encoding.UTF8, "text/plain")));
        var bare = new ByteArrayContent(Encoding.UTF8.GetBytes("""{"data":2}"""));
        Assert.Equal(HttpStatusCode.OK, await Send("/api/v1/channels/room:a/messages", bare));
        Assert.Equal(HttpStatusCode.OK, await Send("/api/v1/users/nobody/disconnect", null));
    }

    [Fact]
    public async Task ReferencePage_IsServedInDevelopment_AndNotElsewhere()
    {
        await using (var production = GatewayHost.Start())
        {
            Assert.Equal(HttpStatusCode.NotFound, (await production.Http.GetAsync("/docs/v1")).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await production.Http.GetAsync("/openapi/v1.json")).StatusCode);
        }

        await using var development = GatewayHost.Start(new Dictionary<string, string?> { ["environment"] = "Development" });
        using var page = await development.Http.GetAsync("/docs/v1");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        var html = await page.Content.ReadAsStringAsync();
        Assert.Contains("PushService REST API", html, StringComparison.Ordinal);
        Assert.Contains("openapi/v1.json", html, StringComparison.Ordinal);

        // The page's script is the gateway's own copy, not fetched from elsewhere.
        Assert.Equal(HttpStatusCode.OK, (await development.Http.GetAsync("/docs/scalar.js")).StatusCode);
    }

    private const string ApiKeyScheme = "apiKey";

    /// <summary>Required properties of <paramref name="schema"/> missing from <paramref name="value"/>, at any depth.</summary>
    private static IEnumerable<string> MissingRequired(IOpenApiSchema schema, JsonNode value, string at = "$")
    {
        if (value is JsonObject obj && schema.Properties is { Count: > 0 } properties)
        {
            foreach (var required in schema.Required ?? new HashSet<string>())
            {
                if (!obj.ContainsKey(required))
                {
                    yield return $"{at}.{required} is required but missing";
                }
            }

            foreach (var (key, child) in obj)
            {
                if (child is not null && properties.TryGetValue(key, out var childSchema))
                {
                    foreach (var missing in MissingRequired(childSchema, child, $"{at}.{key}"))
                    {
                        yield return missing;
                    }
                }
            }
        }
        else if (value is JsonArray array && schema.Items is { } items)
        {
            for (var i = 0; i < array.Count; i++)
            {
                foreach (var missing in MissingRequired(items, array[i]!, $"{at}[{i}]"))
                {
                    yield return missing;
                }
            }
        }
    }

    /// <summary>Properties of <paramref name="value"/> that <paramref name="schema"/> does not describe, at any depth.</summary>
    private static IEnumerable<string> Undocumented(IOpenApiSchema schema, JsonNode value, string at = "$")
    {
        if (value is JsonObject obj && schema.Properties is { Count: > 0 } properties)
        {
            foreach (var (key, child) in obj)
            {
                if (!properties.TryGetValue(key, out var childSchema))
                {
                    yield return $"{at}.{key} is not in the document";
                }
                else if (child is not null)
                {
                    foreach (var extra in Undocumented(childSchema, child, $"{at}.{key}"))
                    {
                        yield return extra;
                    }
                }
            }
        }
        else if (value is JsonArray array && schema.Items is { } items)
        {
            for (var i = 0; i < array.Count; i++)
            {
                foreach (var extra in Undocumented(items, array[i]!, $"{at}[{i}]"))
                {
                    yield return extra;
                }
            }
        }
    }
}
