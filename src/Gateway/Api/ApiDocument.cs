using System.Text.Json.Nodes;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace PushService.Gateway.Api;

/// <summary>
/// The OpenAPI document of the REST API, served at <c>/openapi/v1.json</c> (and read by the reference page at <c>/docs</c>
/// in Development): made by Microsoft.AspNetCore.OpenApi from the mapped endpoints and their metadata
/// (<see cref="PushApiEndpoints"/>), with the API-key security scheme, each endpoint's scope and examples added here.
/// </summary>
internal static class ApiDocument
{
    public const string Name = "v1";
    public const string Path = "/openapi/{documentName}.json";
    public const string SecurityScheme = "apiKey";

    private static readonly Dictionary<string, string> ParameterDescriptions = new(StringComparer.Ordinal)
    {
        ["channel"] = "The channel name, percent-encoded (dm%2342%2C77 for dm#42,77): 1 to 255 characters of A-Z a-z 0-9 _ - : . @ / = #.",
        ["user"] = "The user id, percent-encoded.",
        ["since"] = "Return the publications after this offset.",
        ["epoch"] = "The epoch 'since' belongs to; another epoch than the channel's returns no messages.",
        ["limit"] = "At most this many publications (PushService:Limits:MaxHistoryLimit at most).",
    };

    public static IServiceCollection AddPushOpenApi(this IServiceCollection services)
    {
        // The API reads and writes numbers as JSON numbers only; the web default (numbers also from strings) would have
        // the document describe every integer as "integer or string".
        services.ConfigureHttpJsonOptions(json => json.SerializerOptions.NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.Strict);
        return services.AddOpenApi(Name, options =>
        {
            options.AddDocumentTransformer((document, _, _) =>
            {
                document.Info = new OpenApiInfo
                {
                    Title = "PushService REST API",
                    Version = "v1",
                    Description = "Publish to channels and read their history, presence and the cluster's state. Errors are RFC 9457 "
                        + "problem details. Send 'Authorization: Bearer <api key>' with a key that has the endpoint's scope "
                        + "(publish, read or admin; admin may do everything); with no keys configured the API answers loopback "
                        + "callers only. Subscribers use the WebSocket protocol instead (docs/protocol.md).",
                };
                document.Components ??= new OpenApiComponents();
                document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>();
                document.Components.SecuritySchemes[SecurityScheme] = new OpenApiSecurityScheme
                {
                    Type = SecuritySchemeType.Http,
                    Scheme = "bearer",
                    Description = "An API key from PushService:Api:Keys, as 'Authorization: Bearer <key>'. A missing or unknown key "
                        + "gets 401, a key without the endpoint's scope 403.",
                };
                return Task.CompletedTask;
            });

            options.AddOperationTransformer(async (operation, context, cancellationToken) =>
            {
                var metadata = context.Description.ActionDescriptor.EndpointMetadata;
                if (metadata.OfType<ApiRequestBody>().LastOrDefault() is { } body)
                {
                    operation.RequestBody = new OpenApiRequestBody
                    {
                        Required = body.Required,
                        Content = new Dictionary<string, OpenApiMediaType>
                        {
                            ["application/json"] = new() { Schema = await context.GetOrCreateSchemaAsync(body.Type, null, cancellationToken) },
                        },
                    };
                }

                if (metadata.OfType<ApiScopeMetadata>().LastOrDefault() is { } scope)
                {
                    operation.Security ??= [];
                    operation.Security.Add(new OpenApiSecurityRequirement
                    {
                        [new OpenApiSecuritySchemeReference(SecurityScheme, context.Document)] = [],
                    });
                    operation.Description += $" Needs an API key with the '{scope.Scope}' scope (or 'admin').";
                }

                foreach (var parameter in operation.Parameters ?? [])
                {
                    if (parameter is OpenApiParameter concrete && concrete.Name is { } name && ParameterDescriptions.TryGetValue(name, out var text))
                    {
                        concrete.Description = text;
                    }
                }

                if (metadata.OfType<ApiExample>().LastOrDefault() is { } example)
                {
                    if (example.Request is not null && operation.RequestBody?.Content?.TryGetValue("application/json", out var request) == true)
                    {
                        request.Example = JsonNode.Parse(example.Request);
                    }

                    if (operation.Responses?.TryGetValue("200", out var ok) == true && ok.Content?.TryGetValue("application/json", out var answer) == true)
                    {
                        answer.Example = JsonNode.Parse(example.Response);
                    }
                }
            });
        });
    }
}
